import type { Role } from '../domain/index.js';

/** What a role may do in general; lesson-specific rules (floor, own lesson) live in lessons/. */
export type Permission =
  | 'lesson.create'
  | 'lesson.join'
  | 'lesson.teach' // publish camera/mic/screen at any time, go live, end, control the floor
  | 'lesson.watchHidden' // join invisibly (control room)
  | 'hand.raise'
  | 'media.consume'
  | 'media.publishWithFloor'
  | 'live.read'
  | 'recordings.read'
  | 'recordings.delete'
  | 'tokens.mint'
  | 'catalog.read' // schools, people, subjects, the timetable
  | 'catalog.manage'; // change them, enrol and revoke devices, revoke tokens

export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<Permission>> = {
  // live.read: the studio colours each school by its reception (the live view is filtered to the token's lessons).
  instructor: new Set(['lesson.create', 'lesson.join', 'lesson.teach', 'media.consume', 'live.read', 'catalog.read']),
  classroom: new Set(['lesson.join', 'hand.raise', 'media.consume', 'media.publishWithFloor']),
  monitor: new Set(['lesson.join', 'lesson.watchHidden', 'media.consume', 'live.read', 'recordings.read', 'catalog.read']),
  archivist: new Set(['recordings.read']),
  admin: new Set([
    'lesson.create',
    'live.read',
    'recordings.read',
    'recordings.delete',
    'tokens.mint',
    'lesson.join',
    'lesson.watchHidden',
    'media.consume',
    'catalog.read',
    'catalog.manage',
  ]),
};

export function can(role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].has(permission);
}

/** "an archivist", "a classroom": a role as messages name it. */
export function aRole(role: Role): string {
  return `${/^[aeiou]/.test(role) ? 'an' : 'a'} ${role}`;
}
