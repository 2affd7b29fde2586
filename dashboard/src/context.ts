/** What every page gets from the signed-in app: the API, who is signed in, and the header's connection indicator. */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api } from './api.ts';
import type { Me } from './api-types.ts';
import type { ConnectionState } from './stream.ts';

export type IndicatorState = ConnectionState | 'idle';

export interface Session {
  api: Api;
  me: Me;
  /** Operators and admins act; viewers only look (the API refuses them anyway). */
  canAct: boolean;
  signOut(): void;
  /** Reports the page's stream state to the header. */
  setConnection(state: IndicatorState): void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in app');
  return session;
}
