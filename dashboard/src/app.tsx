/**
 * The app: sign-in (the token lives in sessionStorage, so it is gone when
 * the tab closes), then the header (navigation, the stream's state, who is
 * signed in) and the page of the hash route. A 401 from any call signs out.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, createApi, describeError } from './api.ts';
import type { Me } from './api-types.ts';
import { SessionContext, type IndicatorState, type Session } from './context.ts';
import { useHashRoute } from './hooks.ts';
import { AlertPage } from './pages/alert.tsx';
import { AlertsPage } from './pages/alerts.tsx';
import { DispatchPage } from './pages/dispatch.tsx';
import { DispatchesPage } from './pages/dispatches.tsx';
import { FleetPage } from './pages/fleet.tsx';
import { SignInPage } from './pages/signin.tsx';
import { SitePage } from './pages/site.tsx';
import { SitesPage } from './pages/sites.tsx';
import { href, sectionOf, type Route, type Section } from './route.ts';
import { Loading } from './ui.tsx';

const TOKEN_KEY = 'vpp.dashboard.token';

type Auth =
  | { phase: 'checking'; token: string }
  | { phase: 'signin'; notice: string | null }
  | { phase: 'unreachable'; token: string; error: unknown }
  | { phase: 'ready'; token: string; me: Me };

function readToken(): string | null {
  try {
    return window.sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: sign in every time
  }
}

function writeToken(token: string | null): void {
  try {
    if (token === null) window.sessionStorage.removeItem(TOKEN_KEY);
    else window.sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // storage disabled: the session lasts as long as the page
  }
}

export function App() {
  const [auth, setAuth] = useState<Auth>(() => {
    const token = readToken();
    return token === null ? { phase: 'signin', notice: null } : { phase: 'checking', token };
  });

  const check = useCallback(async (token: string) => {
    setAuth({ phase: 'checking', token });
    try {
      const me = await createApi(token, () => undefined).me();
      setAuth({ phase: 'ready', token, me });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        writeToken(null);
        setAuth({ phase: 'signin', notice: 'Your token is no longer accepted (revoked or expired). Sign in again.' });
      } else setAuth({ phase: 'unreachable', token, error: err });
    }
  }, []);

  useEffect(() => {
    if (auth.phase === 'checking') void check(auth.token);
    // only the first check; later ones are started by their callers
  }, []);

  const signOut = useCallback((notice: string | null = null) => {
    writeToken(null);
    setAuth({ phase: 'signin', notice });
  }, []);

  if (auth.phase === 'checking') return <Loading what="your session" />;
  if (auth.phase === 'unreachable') {
    return (
      <main class="signin" id="main">
        <div class="signin-card">
          <h1>Cannot reach the platform</h1>
          <p class="state state-error" role="alert">
            {describeError(auth.error)}
          </p>
          <div class="form-buttons">
            <button type="button" class="btn btn-primary" onClick={() => void check(auth.token)}>
              Try again
            </button>
            <button type="button" class="btn btn-quiet" onClick={() => signOut()}>
              Sign out
            </button>
          </div>
        </div>
      </main>
    );
  }
  if (auth.phase === 'signin') {
    return (
      <SignInPage
        notice={auth.notice}
        onSignedIn={(token, me) => {
          writeToken(token);
          setAuth({ phase: 'ready', token, me });
        }}
      />
    );
  }
  return <Console token={auth.token} me={auth.me} signOut={signOut} />;
}

function Console({ token, me, signOut }: { token: string; me: Me; signOut: (notice?: string | null) => void }) {
  const [connection, setConnection] = useState<IndicatorState>('idle');
  const expire = useCallback(() => signOut('Your token is no longer accepted (revoked or expired). Sign in again.'), [signOut]);
  const api = useMemo(() => createApi(token, expire), [token, expire]);
  const session = useMemo<Session>(
    () => ({ api, me, canAct: me.role === 'operator' || me.role === 'admin', signOut: expire, setConnection }),
    [api, me, expire],
  );
  const route = useHashRoute();
  const main = useRef<HTMLElement>(null);
  const firstRoute = useRef(true);

  useEffect(() => {
    document.title = `${titleOf(route)} · VPP`;
    // Keyboard and screen-reader users land on the new page, not on the link they left.
    if (firstRoute.current) firstRoute.current = false;
    else main.current?.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }, [href(route)]);

  return (
    <SessionContext.Provider value={session}>
      <a class="skip-link" href="#main" onClick={(e) => (e.preventDefault(), main.current?.focus())}>
        Skip to content
      </a>
      <Header section={sectionOf(route)} me={me} connection={connection} onSignOut={() => signOut()} />
      <main id="main" ref={main} tabIndex={-1} class="main">
        <PageOf route={route} />
      </main>
    </SessionContext.Provider>
  );
}

function titleOf(route: Route): string {
  switch (route.page) {
    case 'fleet':
      return 'Fleet';
    case 'sites':
      return 'Sites';
    case 'site':
      return `Site ${route.id}`;
    case 'alerts':
      return 'Alerts';
    case 'alert':
      return `Alert ${route.id}`;
    case 'dispatches':
      return 'Dispatch';
    case 'dispatch':
      return 'Dispatch';
  }
}

function PageOf({ route }: { route: Route }) {
  switch (route.page) {
    case 'fleet':
      return <FleetPage key="fleet" />;
    case 'sites':
      return <SitesPage key="sites" initialQuery={route.query} />;
    case 'site':
      return <SitePage key={`site:${route.id}`} id={route.id} />;
    case 'alerts':
      return <AlertsPage key="alerts" />;
    case 'alert':
      return <AlertPage key={`alert:${route.id}`} id={route.id} />;
    case 'dispatches':
      return <DispatchesPage key="dispatches" />;
    case 'dispatch':
      return <DispatchPage key={`dispatch:${route.id}`} id={route.id} />;
  }
}

const NAV: readonly { section: Section; label: string; route: Route }[] = [
  { section: 'fleet', label: 'Fleet', route: { page: 'fleet' } },
  { section: 'sites', label: 'Sites', route: { page: 'sites', query: '' } },
  { section: 'alerts', label: 'Alerts', route: { page: 'alerts' } },
  { section: 'dispatch', label: 'Dispatch', route: { page: 'dispatches' } },
];

const CONNECTION_LABEL: Record<IndicatorState, string> = {
  idle: 'Idle',
  connecting: 'Connecting',
  live: 'Live',
  reconnecting: 'Reconnecting',
  offline: 'Offline',
  closed: 'Closed',
};

function Header({ section, me, connection, onSignOut }: { section: Section; me: Me; connection: IndicatorState; onSignOut: () => void }) {
  return (
    <header class="header">
      <a class="brand" href={href({ page: 'fleet' })} aria-label="VPP operator console, fleet">
        <span class="brand-mark" aria-hidden="true" />
        <span>VPP</span>
      </a>
      <nav class="nav" aria-label="Main">
        {NAV.map((item) => (
          <a key={item.section} href={href(item.route)} class={item.section === section ? 'active' : ''} aria-current={item.section === section ? 'page' : undefined}>
            {item.label}
          </a>
        ))}
      </nav>
      <div class="header-right">
        <span
          class={`conn conn-${connection}`}
          data-testid="connection-state"
          data-state={connection}
          role="status"
          aria-live="polite"
          title={connection === 'offline' ? 'The live stream is down; the page polls the API meanwhile.' : 'live stream'}
        >
          <span class="conn-dot" aria-hidden="true" />
          {CONNECTION_LABEL[connection]}
        </span>
        <span class="whoami" data-testid="whoami" data-role={me.role} data-name={me.name}>
          <span class="whoami-name">{me.name}</span>
          <span class={`role role-${me.role}`}>{me.role}</span>
        </span>
        <button type="button" class="btn btn-small btn-quiet" onClick={onSignOut} data-testid="signout">
          Sign out
        </button>
      </div>
    </header>
  );
}
