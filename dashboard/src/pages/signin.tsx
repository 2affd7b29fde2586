/** Sign-in: a token, checked with `GET /api/v1/me`; kept in sessionStorage by the app, so it is gone when the tab closes. */
import { useState } from 'preact/hooks';
import { ApiError, createApi, describeError } from '../api.ts';
import type { Me } from '../api-types.ts';

export function SignInPage({ onSignedIn, notice }: { onSignedIn: (token: string, me: Me) => void; notice: string | null }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    const value = token.trim();
    if (value === '') {
      setError('Enter your API token.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const me = await createApi(value, () => undefined).me();
      onSignedIn(value, me);
    } catch (err) {
      setBusy(false);
      setError(err instanceof ApiError && err.status === 401 ? 'token not accepted' : describeError(err));
    }
  };

  return (
    <main class="signin" id="main">
      <form class="signin-card" onSubmit={(e) => void submit(e)} noValidate>
        <div class="brand brand-large">
          <span class="brand-mark" aria-hidden="true" />
          <span>
            VPP <span class="muted">operator console</span>
          </span>
        </div>
        <h1>Sign in</h1>
        {notice !== null ? (
          <p class="state state-warn" role="status">
            {notice}
          </p>
        ) : null}
        <label for="signin-token">API token</label>
        <input
          id="signin-token"
          data-testid="signin-token"
          type="password"
          autocomplete="current-password"
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
          aria-invalid={error !== null}
          aria-describedby={error !== null ? 'signin-error' : 'signin-hint'}
          autofocus
        />
        <p class="field-hint" id="signin-hint">
          A token made with <span class="mono">POST /api/v1/tokens</span>, or the admin token. It stays in this tab only.
        </p>
        {error !== null ? (
          <p class="field-error" id="signin-error" role="alert" data-testid="signin-error">
            {error}
          </p>
        ) : null}
        <button type="submit" class="btn btn-primary btn-wide" data-testid="signin-submit" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
