/** What a track carries, as WebRTC names it. */
export const MEDIA_KINDS = ['audio', 'video'] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

/** Where a published track comes from; a microphone carries audio, the others video. */
export const MEDIA_SOURCES = ['camera', 'microphone', 'screen'] as const;
export type MediaSource = (typeof MEDIA_SOURCES)[number];

/** The kind of media a source must carry. */
export const kindOfSource = (source: MediaSource): MediaKind => (source === 'microphone' ? 'audio' : 'video');
