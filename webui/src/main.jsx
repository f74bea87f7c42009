// SPDX-License-Identifier: LGPL-2.1-or-later
// The application's entry: picks the page for the route (or the login
// while there is no session; the setup page either way) inside the shell,
// and starts.

import { render } from "preact";
import { LoginPage, LoginShell, Shell } from "./components/shell.jsx";
import { Loading, Page } from "./components/ui.jsx";
import { language, t } from "./i18n.js";
import { AlertsPage, AuditPage, ChangesPage, JobPage, JobsPage } from "./pages/activity.jsx";
import { ConsolePage } from "./pages/console.jsx";
import { DashboardPage } from "./pages/dashboard.jsx";
import { FencingPage } from "./pages/fencing.jsx";
import { InfrastructurePage } from "./pages/infrastructure.jsx";
import { NodesPage } from "./pages/nodes.jsx";
import { NetworksPage, StoragePage } from "./pages/resources.jsx";
import { VmPage, VmsPage } from "./pages/vms.jsx";
import { href, useRoute } from "./router.js";
import { SetupPage } from "./wizards/setup.jsx";
import { app, bootstrap, useLanguage, useStore } from "./store.js";
import "./style.css";

// Route name → page; params come from the route's pattern.
export const PAGES = {
        dashboard: () => <DashboardPage />,
        nodes: () => <NodesPage />,
        vms: () => <VmsPage />,
        vm: (p) => <VmPage id={p.id} key={p.id} />,
        console: (p) => <ConsolePage id={p.id} key={p.id} />,
        storage: () => <StoragePage />,
        networks: () => <NetworksPage />,
        fencing: () => <FencingPage />,
        infrastructure: () => <InfrastructurePage />,
        jobs: () => <JobsPage />,
        job: (p) => <JobPage id={p.id} key={p.id} />,
        audit: () => <AuditPage />,
        alerts: () => <AlertsPage />,
        changes: () => <ChangesPage />,
};

function NotFound() {
        return (
                <Page title={t("notfound.title")}>
                        <p>{t("notfound.text")}</p>
                        <a href={href("dashboard")}>{t("nav.dashboard")}</a>
                </Page>
        );
}

function App() {
        useLanguage();
        const phase = useStore(app, (s) => s.phase);
        const route = useRoute();
        if (phase === "loading")
                return <main id="main" class="boot"><Loading /></main>;
        // Setting up works without a session (a fresh node has nobody to
        // log in as) and stays mounted across the login it ends with.
        if (route.name === "setup")
                return <LoginShell><SetupPage /></LoginShell>;
        if (phase === "login")
                return <LoginShell><LoginPage /></LoginShell>;
        const page = PAGES[route.name];
        return (
                <Shell route={route}>
                        {page ? page(route.params) : <NotFound />}
                </Shell>
        );
}

document.documentElement.lang = language();
render(<App />, document.getElementById("app"));
bootstrap();
