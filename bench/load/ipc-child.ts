/**
 * A load process spoken to over IPC: each request gets an id, and the
 * reply with that id settles it (a reply of type `failed` rejects with its
 * message); a request unanswered within its timeout rejects, and so does
 * every pending one when the process exits. Messages that answer no
 * request go to `onOther` (progress reports).
 */
import type { ChildProcess } from 'node:child_process';

/** Omit distributed over a union, so each request keeps its own fields. */
export type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

type Pending = { resolve: (value: never) => void; reject: (error: Error) => void };

export class IpcChild<Request extends { id: number; type: string }, Reply extends { id: number; type: string }> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    onOther: (message: unknown) => void = () => undefined,
  ) {
    child.on('message', (message: Reply | { type: string; id?: number }) => {
      const waiter = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiter) return onOther(message);
      this.pending.delete(message.id!);
      if (message.type === 'failed') waiter.reject(new Error(`${name}: ${(message as { message?: string }).message}`));
      else waiter.resolve(message as never);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        for (const waiter of this.pending.values()) waiter.reject(new Error(`${name} exited (code ${code}) before replying`));
        this.pending.clear();
        resolve(code);
      });
    });
  }

  request<T extends Reply['type']>(body: WithoutId<Request>, timeoutMs: number): Promise<Extract<Reply, { type: T }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name} did not answer ${body.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send({ ...body, id });
    });
  }

  /** Waits for the process to exit (the caller asked it to stop), then SIGKILL after `graceMs`. */
  async end(graceMs: number): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
