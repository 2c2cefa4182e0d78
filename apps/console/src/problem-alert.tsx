import type { ComponentChildren } from 'preact';

/** What went wrong, announced to screen readers as it appears. */
export function ProblemAlert({ id, children }: { id?: string; children: ComponentChildren }) {
  return (
    <p id={id} class="problem" role="alert">
      {children}
    </p>
  );
}
