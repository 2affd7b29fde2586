/** Preact hooks shared by the pages: the route, a ticking clock, loading over REST, the page's live stream. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, isAbort } from './api.ts';
import { useSession } from './context.ts';
import { parseRoute, type Route } from './route.ts';
import { StreamClient, TicketRefusedError, type ConnectionState, type StreamMessage } from './stream.ts';

/** A topic that should be live is stale after this long without an event. */
export const STALE_AFTER_MS = 10_000;
/** While the stream is down, pages poll their REST data this often. */
export const POLL_WHILE_DOWN_MS = 5_000;
/** Change-only topics (alerts, sites): if the stream has not opened by then, the list is fetched anyway. */
export const FETCH_FALLBACK_MS = 2_000;

export function useHashRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export function navigate(hash: string): void {
  if (window.location.hash !== hash) window.location.hash = hash;
}

/** The time, re-rendering the caller every `intervalMs`. */
export function useNow(intervalMs = 1_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), intervalMs);
    return () => window.clearInterval(timer);
  }, [intervalMs]);
  return now;
}

export interface Loaded<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  /** When data last arrived (client clock). */
  loadedAt: number | null;
  reload(): Promise<void>;
  setData(update: (previous: T | null) => T | null): void;
}

/**
 * Loads with `load` when `key` changes (aborting the previous request),
 * keeps the last data while reloading and on a failed reload (the error is
 * shown next to it), and lets the caller reload or patch the data.
 */
export function useLoad<T>(key: string, load: (signal: AbortSignal) => Promise<T>): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: unknown; loading: boolean; loadedAt: number | null; key: string }>({
    data: null,
    error: null,
    loading: true,
    loadedAt: null,
    key,
  });
  const loader = useRef(load);
  loader.current = load;
  const controller = useRef<AbortController | null>(null);

  const reload = useCallback(async () => {
    controller.current?.abort();
    const abort = new AbortController();
    controller.current = abort;
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await loader.current(abort.signal);
      if (abort.signal.aborted) return;
      setState({ data, error: null, loading: false, loadedAt: Date.now(), key });
    } catch (err) {
      if (isAbort(err) || abort.signal.aborted) return;
      setState((s) => ({ ...s, error: err, loading: false }));
    }
  }, [key]);

  useEffect(() => {
    setState((s) => (s.key === key ? s : { data: null, error: null, loading: true, loadedAt: null, key }));
    void reload();
    return () => controller.current?.abort();
  }, [reload, key]);

  const setData = useCallback((update: (previous: T | null) => T | null) => {
    setState((s) => ({ ...s, data: update(s.data), loadedAt: Date.now() }));
  }, []);

  const current = state.key === key ? state : { data: null, error: null, loading: true, loadedAt: null };
  return { data: current.data, error: current.error, loading: current.loading, loadedAt: current.loadedAt, reload, setData };
}

export interface PageStreamHandlers {
  onEvent?(message: StreamMessage): void;
  /** Fetch the page's data over REST: after a reset, while the stream is down, and (change-only topics) after each fresh open. */
  refetch?(): void;
  /** After a reset of `topic`, instead of `refetch` (e.g. to reload a chart's history too). */
  onReset?(topic: string): void;
}

export interface LiveStream {
  state: ConnectionState;
  client: StreamClient | null;
}

/**
 * The page's one stream connection, open while the page is shown (closed
 * when it goes or its topics change). Reports its state to the header.
 * `changeOnly`: the topics send only changes (alerts, sites), so the page's
 * list is fetched after the stream opens, or after FETCH_FALLBACK_MS if it
 * has not.
 */
export function useStream(topics: readonly string[] | null, handlers: PageStreamHandlers, options: { changeOnly?: boolean } = {}): LiveStream {
  const session = useSession();
  const handlersRef = useRef(handlers);
  handlersRef.current = handlers;
  const [state, setState] = useState<ConnectionState>('connecting');
  const [client, setClient] = useState<StreamClient | null>(null);
  const key = topics === null ? '' : topics.join(',');
  const changeOnly = options.changeOnly ?? false;
  const { api, setConnection, signOut } = session;

  useEffect(() => {
    if (key === '') return;
    let opened = false;
    const refetch = () => handlersRef.current.refetch?.();
    const stream = new StreamClient(
      key.split(','),
      {
        async getTicket() {
          try {
            return (await api.streamTicket()).ticket;
          } catch (err) {
            if (err instanceof ApiError && err.status === 401) throw new TicketRefusedError();
            throw err;
          }
        },
        openEventSource: (url) => new EventSource(url),
        setTimer: (fn, ms) => window.setTimeout(fn, ms),
        clearTimer: (handle) => window.clearTimeout(handle as number),
        now: () => Date.now(),
      },
      {
        onEvent: (message) => handlersRef.current.onEvent?.(message),
        onReset: (topic) => (handlersRef.current.onReset ? handlersRef.current.onReset(topic) : refetch()),
        onOpen: ({ resumed }) => {
          opened = true;
          if (changeOnly && !resumed) refetch();
        },
        onState: (s) => {
          setState(s);
          setConnection(s);
        },
        onAuthError: () => signOut(),
      },
    );
    setClient(stream);
    setState('connecting');
    setConnection('connecting');
    stream.start();
    const fallback = changeOnly
      ? window.setTimeout(() => {
          if (!opened) refetch();
        }, FETCH_FALLBACK_MS)
      : undefined;
    return () => {
      window.clearTimeout(fallback);
      stream.close();
      setConnection('idle');
    };
  }, [key, changeOnly, api, setConnection, signOut]);

  // While the stream is down the page keeps its data current over REST.
  const down = state === 'reconnecting' || state === 'offline';
  useEffect(() => {
    if (!down) return;
    const timer = window.setInterval(() => handlersRef.current.refetch?.(), POLL_WHILE_DOWN_MS);
    return () => window.clearInterval(timer);
  }, [down]);

  return { state, client };
}

export interface Freshness {
  stale: boolean;
  /** Since the newest data of the topic (event or REST), null before any. */
  ageMs: number | null;
}

/**
 * Whether a topic's numbers are stale: it should be live and nothing came
 * (stream event or REST answer) for more than STALE_AFTER_MS.
 */
export function useFreshness(stream: LiveStream, topic: string, expectLive: boolean, dataAtMs: number | null): Freshness {
  const now = useNow(1_000);
  const eventAt = stream.client?.lastEventAt(topic) ?? null;
  const lastAt = eventAt === null ? dataAtMs : dataAtMs === null ? eventAt : Math.max(eventAt, dataAtMs);
  const since = lastAt ?? stream.client?.startedAtMs ?? now;
  const ageMs = lastAt === null ? null : Math.max(0, now - lastAt);
  return { stale: expectLive && now - since > STALE_AFTER_MS, ageMs };
}

/** `fn` called once, `ms` after the last of a burst of calls. */
export function useDebounced(fn: () => void, ms: number): () => void {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  return useCallback(() => {
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => fnRef.current(), ms);
  }, [ms]);
}
