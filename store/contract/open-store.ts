/**
 * How a contract suite gets a store: a fresh, empty one per test, and a
 * close that releases everything the opener made (files, servers, buckets).
 */
export type OpenStore<S> = () => Promise<{ store: S; close(): Promise<void> }>;
