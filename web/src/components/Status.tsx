// Loading, empty and error states, in words.
import type { ReactNode } from "react";

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      {what}…
    </p>
  );
}

export function ErrorBox({ children, title = "Something went wrong" }: { children: ReactNode; title?: string }) {
  return (
    <div className="error" role="alert">
      <strong>{title}:</strong> {children}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function Badge({ state }: { state: string }) {
  return <span className={`badge badge-${state.replace(/[^a-z_-]/gi, "")}`}>{state}</span>;
}

/** The usual trio: an error, else a first load, else the content. */
export function Gate<T>({
  data,
  error,
  loading,
  what,
  children,
}: {
  data: T | null;
  error: string | null;
  loading: boolean;
  what: string;
  children: (data: T) => ReactNode;
}) {
  return (
    <>
      {error && <ErrorBox title={`Could not load ${what}`}>{error}</ErrorBox>}
      {data === null ? loading && !error ? <Loading what={`Loading ${what}`} /> : null : children(data)}
    </>
  );
}
