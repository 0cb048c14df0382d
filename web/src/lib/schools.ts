/** The admin's list of invited schools: "school-12, School No. 12" per line (the name is optional). */
export interface School {
  id: string;
  name: string;
}

/** The same id rule as the REST API's (src/http/lessonRoutes.ts). */
const ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Valid lines become schools (first id wins); invalid ones are returned to be shown. */
export function parseSchools(text: string): { schools: School[]; bad: string[] } {
  const schools: School[] = [];
  const bad: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const comma = line.indexOf(',');
    const id = (comma < 0 ? line : line.slice(0, comma)).trim();
    const name = (comma < 0 ? '' : line.slice(comma + 1)).trim();
    if (!ID_PATTERN.test(id) || name.length > 200) bad.push(line);
    else if (!schools.some((s) => s.id === id)) schools.push({ id, name: name || id });
  }
  return { schools, bad };
}
