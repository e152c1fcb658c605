// Loading data: once, or again every few seconds, with its loading and error states.
import { useCallback, useEffect, useRef, useState } from "react";
import { describeError } from "../api/client";

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload(): Promise<void>;
}

/**
 * Runs `load` now, whenever `deps` change, and every `everyMs` when given (skipped while the tab is
 * hidden). `onData` sees each successful result (for accumulating points).
 */
export function useLoad<T>(
  load: () => Promise<T>,
  deps: readonly unknown[],
  everyMs?: number,
  onData?: (data: T) => void,
): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const loadRef = useRef(load);
  loadRef.current = load;
  const onDataRef = useRef(onData);
  onDataRef.current = onData;
  const alive = useRef(true);

  const reload = useCallback(async () => {
    try {
      const result = await loadRef.current();
      if (!alive.current) return;
      setData(result);
      setError(null);
      onDataRef.current?.(result);
    } catch (err) {
      if (alive.current) setError(describeError(err));
    } finally {
      if (alive.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    alive.current = true;
    setLoading(true);
    void reload();
    let timer: ReturnType<typeof setInterval> | undefined;
    if (everyMs) {
      timer = setInterval(() => {
        if (globalThis.document?.visibilityState !== "hidden") void reload();
      }, everyMs);
    }
    return () => {
      alive.current = false;
      if (timer) clearInterval(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, everyMs, reload]);

  return { data, error, loading, reload };
}
