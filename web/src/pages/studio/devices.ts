/** The studio's camera and microphone: pickers, preview, mute and level meter; a new choice replaces the published track. */
import { LevelMeter, cameraConstraints, listDevices, micConstraints, recall, remember, type Resolution } from '../../lib/devices.js';
import { byId, fill, h, tryPlay } from '../../lib/dom.js';
import { t, tx } from '../../lib/i18n.js';
import type { CurrentMedia } from '../../lib/media.js';
import { notice } from '../../lib/shell.js';

export class StudioDevices {
  private readonly preview = byId<HTMLVideoElement>('camera-preview');
  private readonly cameraSelect = byId<HTMLSelectElement>('camera-select');
  private readonly micSelect = byId<HTMLSelectElement>('mic-select');
  private readonly resolutionSelect = byId<HTMLSelectElement>('resolution-select');
  private readonly muteButton = byId<HTMLButtonElement>('mute-mic');
  private readonly meter = new LevelMeter();
  camera?: MediaStreamTrack;
  microphone?: MediaStreamTrack;
  private muted = false;

  constructor(private readonly media: CurrentMedia) {
    this.resolutionSelect.value = recall('resolution') ?? '720';
    this.cameraSelect.addEventListener('change', () => this.choose('camera', this.cameraSelect));
    this.resolutionSelect.addEventListener('change', () => this.choose('resolution', this.resolutionSelect));
    this.micSelect.addEventListener('change', () => {
      remember('mic', this.micSelect.value);
      this.openMic().catch((e: unknown) => notice('error', 'studio.micFailed', {}, String(e)));
    });
    this.muteButton.addEventListener('click', () => {
      this.muted = !this.muted;
      if (this.microphone) this.microphone.enabled = !this.muted;
      this.muteButton.setAttribute('aria-pressed', String(this.muted));
      tx(this.muteButton, this.muted ? 'studio.unmuteMic' : 'studio.muteMic');
    });
    const level = byId<HTMLMeterElement>('mic-level');
    setInterval(() => {
      level.value = this.microphone && !this.muted ? this.meter.level() : 0;
    }, 150);
  }

  /** Opens the remembered (or default) camera and microphone and lists the others. */
  async start(): Promise<void> {
    try {
      await this.openCamera();
      await this.openMic();
      await this.fillLists();
    } catch (e) {
      notice('error', 'studio.devicesFailed', {}, (e as Error).message);
    }
  }

  /** The lesson is over: the camera and microphone lights go off. */
  release(): void {
    this.camera?.stop();
    this.microphone?.stop();
    this.camera = this.microphone = undefined;
    this.preview.srcObject = null;
  }

  render(): void {
    this.muteButton.disabled = !this.microphone;
  }

  private choose(name: 'camera' | 'resolution', select: HTMLSelectElement): void {
    remember(name, select.value);
    this.openCamera().catch((e: unknown) => notice('error', 'studio.cameraFailed', {}, String(e)));
  }

  private async openCamera(): Promise<void> {
    const constraints = cameraConstraints(this.cameraSelect.value || recall('camera'), this.resolutionSelect.value as Resolution);
    const next = (await navigator.mediaDevices.getUserMedia({ video: constraints })).getVideoTracks()[0]!;
    this.camera?.stop();
    this.camera = next;
    this.preview.srcObject = new MediaStream([next]);
    void tryPlay(this.preview);
    if (this.media.current?.isPublishing('camera')) await this.media.current.publish('camera', next);
  }

  private async openMic(): Promise<void> {
    const next = (
      await navigator.mediaDevices.getUserMedia({ audio: micConstraints(this.micSelect.value || recall('mic')) })
    ).getAudioTracks()[0]!;
    this.microphone?.stop();
    this.microphone = next;
    next.enabled = !this.muted;
    this.meter.attach(next);
    if (this.media.current?.isPublishing('microphone')) await this.media.current.publish('microphone', next);
  }

  private async fillLists(): Promise<void> {
    const { cameras, mics } = await listDevices();
    const options = (list: MediaDeviceInfo[], current: string | undefined, fallbackKey: 'studio.cameraN' | 'studio.micN') =>
      list.map((d, i) => h('option', { value: d.deviceId, selected: d.deviceId === current }, d.label || t(fallbackKey, { n: i + 1 })));
    fill(this.cameraSelect, ...options(cameras, this.camera?.getSettings().deviceId, 'studio.cameraN'));
    fill(this.micSelect, ...options(mics, this.microphone?.getSettings().deviceId, 'studio.micN'));
  }
}
