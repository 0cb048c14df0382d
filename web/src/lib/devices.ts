/** Camera and microphone capture with the user's choices remembered per browser. */
export type Resolution = '1080' | '720' | '360';

const SIZES: Record<Resolution, { width: number; height: number }> = {
  '1080': { width: 1920, height: 1080 },
  '720': { width: 1280, height: 720 },
  '360': { width: 640, height: 360 },
};

export function cameraConstraints(deviceId: string | undefined, resolution: Resolution): MediaTrackConstraints {
  const { width, height } = SIZES[resolution];
  return {
    ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
    width: { ideal: width },
    height: { ideal: height },
    frameRate: { ideal: 30, max: 30 },
  };
}

export function micConstraints(deviceId: string | undefined): MediaTrackConstraints {
  return { ...(deviceId ? { deviceId: { exact: deviceId } } : {}), echoCancellation: true, noiseSuppression: true, autoGainControl: true };
}

export async function listDevices(): Promise<{ cameras: MediaDeviceInfo[]; mics: MediaDeviceInfo[] }> {
  const all = await navigator.mediaDevices.enumerateDevices();
  return { cameras: all.filter((d) => d.kind === 'videoinput'), mics: all.filter((d) => d.kind === 'audioinput') };
}

export function remember(name: string, value: string): void {
  localStorage.setItem(`lessoncast.device.${name}`, value);
}

export function recall(name: string): string | undefined {
  return localStorage.getItem(`lessoncast.device.${name}`) ?? undefined;
}

/** A 0–1 level of a microphone track, sampled on demand (for a meter); close() releases the audio graph. */
export class LevelMeter {
  private readonly ctx = new AudioContext();
  private readonly analyser = this.ctx.createAnalyser();
  private readonly buf: Float32Array<ArrayBuffer>;
  private source?: MediaStreamAudioSourceNode;

  constructor() {
    this.analyser.fftSize = 512;
    this.buf = new Float32Array(this.analyser.fftSize);
  }

  attach(track: MediaStreamTrack): void {
    this.source?.disconnect();
    this.source = this.ctx.createMediaStreamSource(new MediaStream([track]));
    this.source.connect(this.analyser);
  }

  level(): number {
    if (this.ctx.state === 'suspended') void this.ctx.resume().catch(() => undefined);
    this.analyser.getFloatTimeDomainData(this.buf);
    let sum = 0;
    for (const v of this.buf) sum += v * v;
    return Math.min(1, Math.sqrt(sum / this.buf.length) * 4);
  }

  close(): void {
    this.source?.disconnect();
    void this.ctx.close();
  }
}
