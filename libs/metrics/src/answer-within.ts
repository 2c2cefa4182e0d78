/**
 * What `work` settles with, or `otherwise` once it fails or has taken `ms`. Probes and
 * scrapes answer with it: a Redis or MySQL client holds its commands until its server is
 * back, and a probe or scrape that waits for them never answers, so the process reads as
 * dead while the fault is elsewhere.
 */
export function answerWithin<T, U>(work: Promise<T>, ms: number, otherwise: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<U>((resolve) => (timer = setTimeout(() => resolve(otherwise), ms)));
  return Promise.race([work.catch(() => otherwise), late]).finally(() => clearTimeout(timer));
}
