/** What the studio and the classroom both expose on window.lessoncast (support staff and the browser tests read it). */
import type { LessonView } from '../../../src/domain/index.js';
import type { LessonLink } from '../lib/link.js';
import type { CurrentMedia } from '../lib/media.js';

export function lessonDiagnostics(
  page: string,
  link: LessonLink,
  lesson: () => LessonView | undefined,
  timings: Record<string, number>,
  media: CurrentMedia,
) {
  return {
    page,
    linkState: () => link.state,
    lessonState: () => lesson()?.state,
    timings: () => ({ ...timings }),
    inboundStats: () => media.current?.inboundStats() ?? [],
  };
}
