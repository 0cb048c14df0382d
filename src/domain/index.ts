/**
 * The words every room of lessoncast shares. A leaf: it imports nothing from the rest of src/,
 * so the domain, the wire and the browser pages can all use it.
 */
export * from './media.js';
export * from './recording.js';
export * from './roles.js';
export * from './views.js';
