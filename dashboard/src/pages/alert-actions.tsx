/**
 * Acknowledge (optional note) and resolve (reason required) an alert, for
 * operators and admins; hidden from viewers. Each opens a dialog; a 409 (someone
 * else was quicker) is shown in it, and the page refetches either way.
 */
import { useState } from 'preact/hooks';
import { ApiError, describeError } from '../api.ts';
import type { Alert } from '../api-types.ts';
import { useSession } from '../context.ts';
import { Dialog } from '../ui.tsx';

/** What the API keeps of a note or reason. */
const MAX_NOTE_CHARS = 1_000;

export function AlertActions({ alert, onDone, size = 'small' }: { alert: Alert; onDone: () => void; size?: 'small' | 'normal' }) {
  const { api, canAct } = useSession();
  const [dialog, setDialog] = useState<'ack' | 'resolve' | null>(null);
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!canAct || alert.state === 'resolved') return null;

  const open = (which: 'ack' | 'resolve') => {
    setText('');
    setError(null);
    setDialog(which);
  };
  const close = () => {
    if (!busy) setDialog(null);
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    if (dialog === 'resolve' && text.trim() === '') {
      setError('A reason is required: say why the alert can be closed.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      if (dialog === 'ack') await api.acknowledgeAlert(alert.id, text);
      else await api.resolveAlert(alert.id, text);
      setBusy(false);
      setDialog(null);
      onDone();
    } catch (err) {
      setBusy(false);
      setError(err instanceof ApiError && err.status === 409 ? `Already done: ${err.message}` : describeError(err));
      if (err instanceof ApiError && err.status === 409) onDone();
    }
  };
  const btn = size === 'small' ? 'btn btn-small' : 'btn';

  return (
    <div class="actions" onClick={(e) => e.stopPropagation()} onKeyDown={(e) => e.stopPropagation()}>
      {alert.state === 'firing' ? (
        <button type="button" class={btn} data-testid={`alert-ack-${alert.id}`} onClick={() => open('ack')}>
          Acknowledge
        </button>
      ) : null}
      <button type="button" class={`${btn} btn-quiet`} data-testid={`alert-resolve-${alert.id}`} onClick={() => open('resolve')}>
        Resolve
      </button>
      <Dialog open={dialog !== null} title={dialog === 'ack' ? 'Acknowledge alert' : 'Resolve alert'} onClose={close}>
        <form onSubmit={(e) => void submit(e)} class="dialog-form">
          <p class="dialog-summary">
            <span class={`sev sev-${alert.severity}`}>{alert.severity}</span> {alert.summary}
          </p>
          <label for={`alert-text-${alert.id}`}>{dialog === 'ack' ? 'Note (optional)' : 'Reason (required)'}</label>
          <textarea
            id={`alert-text-${alert.id}`}
            data-testid={dialog === 'ack' ? 'alert-ack-note' : 'alert-resolve-reason'}
            rows={3}
            maxLength={MAX_NOTE_CHARS}
            value={text}
            required={dialog === 'resolve'}
            placeholder={dialog === 'ack' ? 'What you are doing about it' : 'Why it can be closed'}
            onInput={(e) => setText(e.currentTarget.value)}
            autofocus
          />
          {error !== null ? (
            <div class="field-error" role="alert">
              {error}
            </div>
          ) : null}
          <div class="dialog-buttons">
            <button type="button" class="btn btn-quiet" onClick={close} disabled={busy}>
              Cancel
            </button>
            <button
              type="submit"
              class="btn btn-primary"
              data-testid={dialog === 'ack' ? 'alert-ack-confirm' : 'alert-resolve-confirm'}
              disabled={busy || (dialog === 'resolve' && text.trim() === '')}
            >
              {busy ? 'Saving…' : dialog === 'ack' ? 'Acknowledge' : 'Resolve'}
            </button>
          </div>
        </form>
      </Dialog>
    </div>
  );
}
