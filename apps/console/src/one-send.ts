import { useRef, useState } from 'preact/hooks';
import { problemText } from './api.js';

/**
 * A form's request sent one at a time, with the problem it answered to show: `sending` is set
 * at once, before the button re-renders disabled, so a double click's second submit finds it.
 */
export function useOneSendAtATime() {
  const [problem, setProblem] = useState<string | null>(null);
  const [sendingNow, setSendingNow] = useState(false);
  const sending = useRef(false);
  async function send(request: () => Promise<void>) {
    if (sending.current) return;
    sending.current = true;
    setSendingNow(true);
    setProblem(null);
    try {
      await request();
    } catch (error) {
      setProblem(problemText(error));
    } finally {
      sending.current = false;
      setSendingNow(false);
    }
  }
  return { problem, sendingNow, send };
}
