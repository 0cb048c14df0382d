/** Who someone is in the system; each role's permissions are in auth/permissions.ts. */
export const ROLES = ['instructor', 'classroom', 'monitor', 'archivist', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The roles a lesson's publisher can have: the instructor, or a classroom holding the floor. */
export type PublisherRole = Extract<Role, 'instructor' | 'classroom'>;

export const isRole = (value: unknown): value is Role => (ROLES as readonly unknown[]).includes(value);
