// The shell: sign-in gate (or an invitation to accept), navigation (each page for whom it serves:
// admin pages for platform admins, API-key pages for keys, organisation pages by role), the
// organisation switcher, and the page for the path. The server still decides every call.
import { type ComponentType, useEffect, useState } from "react";
import { type Session, useAuth } from "./auth";
import { Loading } from "./components/Status";
import { readHandoff } from "./lib/session";
import { type MyRole, OrgProvider, OrgSwitcher, canManage, useOrg } from "./org";
import { AcceptInvite } from "./pages/AcceptInvite";
import { Audit } from "./pages/Audit";
import { Batches } from "./pages/Batches";
import { Deployments } from "./pages/Deployments";
import { Jobs } from "./pages/Jobs";
import { Keys } from "./pages/Keys";
import { Login } from "./pages/Login";
import { Members } from "./pages/Members";
import { Organization } from "./pages/Organization";
import { Overview } from "./pages/Overview";
import { Playground } from "./pages/Playground";
import { Usage } from "./pages/Usage";
import { Webhooks } from "./pages/Webhooks";
import { Workers } from "./pages/Workers";
import { Link, navigate, usePath } from "./router";

/**
 * Who a page serves: `admin` platform admins; `key` API keys (the inference routes take no user
 * token); `key-or-admin` both; `any` everyone; `org` platform admins and members of the chosen
 * organisation; `org-maker` platform admins and those who make keys in it (owners, admins,
 * members: not viewers); `org-manager` platform admins and its owners and admins.
 */
export type Audience = "admin" | "key" | "key-or-admin" | "any" | "org" | "org-maker" | "org-manager";

export interface Page {
  path: string;
  title: string;
  audience: Audience;
  component: ComponentType;
}

export const PAGES: Page[] = [
  { path: "/", title: "Overview", audience: "admin", component: Overview },
  { path: "/playground", title: "Playground", audience: "key", component: Playground },
  { path: "/keys", title: "API keys", audience: "org-maker", component: Keys },
  { path: "/usage", title: "Usage", audience: "any", component: Usage },
  { path: "/deployments", title: "Deployments", audience: "admin", component: Deployments },
  { path: "/workers", title: "Workers & GPUs", audience: "admin", component: Workers },
  { path: "/jobs", title: "Jobs", audience: "key-or-admin", component: Jobs },
  { path: "/batches", title: "Batches", audience: "key", component: Batches },
  { path: "/webhooks", title: "Webhooks", audience: "key", component: Webhooks },
  { path: "/members", title: "Members", audience: "org", component: Members },
  { path: "/organization", title: "Organisation", audience: "org", component: Organization },
  { path: "/audit", title: "Audit log", audience: "org-manager", component: Audit },
];

/** The pages a session may open, given its role in the chosen organisation. */
export function pagesFor(session: Pick<Session, "kind" | "isAdmin">, myRole: MyRole = null): Page[] {
  const opens: Record<Audience, boolean> = {
    admin: session.isAdmin,
    key: session.kind === "key",
    "key-or-admin": session.kind === "key" || session.isAdmin,
    any: true,
    org: session.isAdmin || (session.kind === "user" && myRole !== null),
    "org-maker": session.isAdmin || (session.kind === "user" && (canManage(myRole) || myRole === "member")),
    "org-manager": session.isAdmin || canManage(myRole),
  };
  return PAGES.filter((p) => opens[p.audience]);
}

export function App() {
  const { session, restore } = useAuth();
  const [restoring, setRestoring] = useState(true);
  useEffect(() => {
    restore().finally(() => setRestoring(false));
  }, [restore]);
  const [invite, setInvite] = useState(() => readHandoff(globalThis.location?.search ?? "").invite);
  if (invite) return <AcceptInvite token={invite} onDone={() => setInvite(null)} />;
  if (restoring) return <Loading what="Signing in" />;
  return session ? (
    <OrgProvider>
      <Shell session={session} />
    </OrgProvider>
  ) : (
    <Login />
  );
}

function Shell({ session }: { session: Session }) {
  const { logout } = useAuth();
  const { myRole, loading: orgLoading } = useOrg();
  const path = usePath();
  const [menuOpen, setMenuOpen] = useState(false);
  const pages = pagesFor(session, myRole);
  const page = PAGES.find((p) => p.path === path);
  const allowed = page && pages.includes(page);

  useEffect(() => {
    // A user key's home is the playground; an unknown path goes home.
    if (!page || (!allowed && path === "/")) navigate(pages[0]?.path ?? "/usage", true);
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
          <OrgSwitcher />
          <span title={session.id}>
            {session.name} <small className="muted">({session.role})</small>
          </span>
          <button type="button" className="secondary" onClick={() => logout()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {Current ? <Current /> : page && !orgLoading ? <p role="alert">{refusal(session, page)}</p> : <Loading />}
      </main>
    </div>
  );
}

function refusal(session: Session, page: Page): string {
  if (session.kind === "key") return page.audience === "key" ? "This page needs an API key." : "This page needs an admin API key.";
  if (page.audience === "key") return "This page takes an API key: sign out and sign in with one to use it.";
  if (page.audience === "org-maker") return "Viewers do not make API keys: ask an owner or admin for the member role.";
  if (page.audience === "org-manager") return "This page needs the owner or admin role in the organisation.";
  if (page.audience === "org") return "Choose an organisation you belong to.";
  return "This page needs a platform admin.";
}
