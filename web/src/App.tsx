// The shell: sign-in gate, navigation (admin pages only for admin keys), and the page for the path.
import { type ComponentType, useEffect, useState } from "react";
import { useAuth } from "./auth";
import { Loading } from "./components/Status";
import { Batches } from "./pages/Batches";
import { Deployments } from "./pages/Deployments";
import { Jobs } from "./pages/Jobs";
import { Keys } from "./pages/Keys";
import { Login } from "./pages/Login";
import { Overview } from "./pages/Overview";
import { Playground } from "./pages/Playground";
import { Usage } from "./pages/Usage";
import { Webhooks } from "./pages/Webhooks";
import { Workers } from "./pages/Workers";
import { Link, navigate, usePath } from "./router";

export interface Page {
  path: string;
  title: string;
  adminOnly: boolean;
  component: ComponentType;
}

export const PAGES: Page[] = [
  { path: "/", title: "Overview", adminOnly: true, component: Overview },
  { path: "/playground", title: "Playground", adminOnly: false, component: Playground },
  { path: "/keys", title: "API keys", adminOnly: true, component: Keys },
  { path: "/usage", title: "Usage", adminOnly: false, component: Usage },
  { path: "/deployments", title: "Deployments", adminOnly: true, component: Deployments },
  { path: "/workers", title: "Workers & GPUs", adminOnly: true, component: Workers },
  { path: "/jobs", title: "Jobs", adminOnly: false, component: Jobs },
  { path: "/batches", title: "Batches", adminOnly: false, component: Batches },
  { path: "/webhooks", title: "Webhooks", adminOnly: false, component: Webhooks },
];

/** The pages a key may open. */
export function pagesFor(isAdmin: boolean): Page[] {
  return PAGES.filter((p) => isAdmin || !p.adminOnly);
}

export function App() {
  const { session, restore } = useAuth();
  const [restoring, setRestoring] = useState(true);
  useEffect(() => {
    restore().finally(() => setRestoring(false));
  }, [restore]);
  if (restoring) return <Loading what="Signing in" />;
  return session ? <Shell /> : <Login />;
}

function Shell() {
  const { session, logout } = useAuth();
  const path = usePath();
  const [menuOpen, setMenuOpen] = useState(false);
  const isAdmin = session?.isAdmin ?? false;
  const pages = pagesFor(isAdmin);
  const page = PAGES.find((p) => p.path === path);
  const allowed = page && pages.includes(page);

  useEffect(() => {
    // A user key's home is the playground; an unknown path goes home.
    if (!page || (!allowed && path === "/")) navigate(pages[0]?.path ?? "/playground", true);
  }, [page, allowed, path, pages]);
  useEffect(() => {
    document.title = page ? `${page.title} · gpucloud` : "gpucloud";
    setMenuOpen(false);
  }, [page]);

  const Current = allowed ? page.component : null;
  return (
    <div className="shell">
      <a className="skip" href="#main">Skip to content</a>
      <header className="topbar">
        <span className="brand">gpucloud</span>
        <button type="button" className="menu secondary" aria-expanded={menuOpen} aria-controls="nav" onClick={() => setMenuOpen((v) => !v)}>
          Menu
        </button>
        <nav id="nav" className={menuOpen ? "open" : undefined} aria-label="Pages">
          {pages.map((p) => (
            <Link key={p.path} href={p.path} aria-current={p.path === path ? "page" : undefined}>
              {p.title}
            </Link>
          ))}
        </nav>
        <div className="who">
          <span title={session?.me.id}>
            {session?.me.name} <small className="muted">({session?.me.role})</small>
          </span>
          <button type="button" className="secondary" onClick={() => logout()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {Current ? <Current /> : page ? <p role="alert">This page needs an admin API key.</p> : <Loading />}
      </main>
    </div>
  );
}
