import { useState } from 'preact/hooks';
import { ProblemAlert } from './problem-alert.js';
import { sessionFromToken, type Session } from './session.js';

export function SignIn({ onSignIn, signedOutBecause }: { onSignIn: (session: Session) => void; signedOutBecause: string | null }) {
  const [token, setToken] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  return (
    <section class="sign-in" aria-labelledby="sign-in-title">
      <h1 id="sign-in-title">Order centre</h1>
      {signedOutBecause && <ProblemAlert>Signed out: {signedOutBecause}</ProblemAlert>}
      <p>Sign in with a merchant or admin token (<code>npm run token -- merchant shop</code> prints one).</p>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          const session = sessionFromToken(token);
          if (typeof session === 'string') setProblem(session);
          else onSignIn(session);
        }}
      >
        <label for="token">Token</label>
        <textarea id="token" name="token" rows={4} required value={token} onInput={(event) => setToken(event.currentTarget.value)} aria-describedby={problem ? 'sign-in-problem' : undefined} />
        {problem && <ProblemAlert id="sign-in-problem">{problem}</ProblemAlert>}
        <button type="submit">Sign in</button>
      </form>
    </section>
  );
}
