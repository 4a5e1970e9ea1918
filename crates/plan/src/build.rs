//! [`validate`]: `PackageDef` -> [`Plan`], collecting every problem.

use crate::Plan;
use crate::diag::{Diagnostic, ValidationError};
use crate::duration::{parse_duration, parse_lease};
use crate::fingerprint::{FingerprintsAhead, fingerprint};
use crate::node::*;
use crate::task::{BuildCx, ExprMemo, Registry};
use crate::vars::{SystemVar, VarDecl, VarTable, VarValue};
use checkflow_expr::{DataType, Value, VarRef};
use checkflow_model::{
    AfterDef, Flow, LoadedPackage, Logic, On, PackageDef, SourcePos, Spanned, TaskDef,
    TransactionOption, pos_of,
};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const CONTAINER_FIELDS: &[(&str, &[&str])] = &[
    ("sequence", &["tasks", "flow", "max_errors", "restart_unit"]),
    (
        "for_loop",
        &[
            "tasks",
            "flow",
            "init",
            "eval",
            "assign",
            "max_errors",
            "restart_unit",
        ],
    ),
    (
        "foreach",
        &[
            "tasks",
            "flow",
            "items",
            "files",
            "rows",
            "map",
            "checkpoint_iterations",
            "max_errors",
            "restart_unit",
        ],
    ),
];

/// Checks a loaded package and builds its [`Plan`], or reports every problem.
pub fn validate(pkg: &LoadedPackage, registry: &Registry) -> Result<Plan, ValidationError> {
    validate_with(pkg, registry, None)
}

/// [`validate`], taking the fingerprints of tasks from `ahead` where another
/// thread computed them already.
pub fn validate_with(
    pkg: &LoadedPackage,
    registry: &Registry,
    ahead: Option<&FingerprintsAhead>,
) -> Result<Plan, ValidationError> {
    let mut v = Validator {
        ahead,
        def: &pkg.def,
        registry,
        dir: &pkg.dir,
        diags: Vec::new(),
        vars: VarTable::default(),
        memo: ExprMemo::default(),
        nodes: Vec::new(),
        defs: Vec::new(),
        handler_nodes: Vec::new(),
    };
    // Every other message quotes names: a name that could forge or hide a
    // line of output is reported alone, escaped, before anything else.
    v.check_names();
    if !v.diags.is_empty() {
        return Err(v.into_error(&pkg.path));
    }
    v.check_package_fields();
    v.declare_variables();
    v.check_connections();
    let checkpoint = v.checkpoint_settings();
    let restart = v.restart_settings();
    // Nodes are large: growing the vector by doubling would copy them all again.
    let count = 1 + count_defs(&pkg.def.tasks);
    v.nodes.reserve_exact(count);
    v.defs.reserve_exact(count);
    v.build_root();
    v.build_handlers();
    if !v.diags.is_empty() {
        return Err(v.into_error(&pkg.path));
    }
    let max_concurrent = match &pkg.def.max_concurrent {
        Some(m) => m.value.max(1) as usize,
        None => crate::cpus() + 2,
    };
    let by_path = crate::index_paths(&v.nodes);
    let mut plan = Plan {
        package: PackageInfo {
            id: pkg.def.id.value.clone(),
            name: pkg.def.name.value.clone(),
            file: pkg.path.clone(),
            dir: pkg.dir.clone(),
            checkpoint,
            max_concurrent,
            restart,
        },
        vars: v.vars,
        nodes: v.nodes,
        connections: pkg
            .def
            .connections
            .iter()
            .map(|(k, c)| (k.clone(), c.value.clone()))
            .collect(),
        by_path,
    };
    for (attached, event, nodes) in v.handler_nodes {
        let handler = Plan {
            package: plan.package.clone(),
            vars: plan.vars.clone(),
            by_path: crate::index_paths(&nodes),
            nodes,
            connections: plan.connections.clone(),
        };
        plan.nodes[attached.index()]
            .handlers
            .get_or_insert_default()
            .set(event, handler);
    }
    Ok(plan)
}

struct Validator<'a> {
    /// Task fingerprints computed on another thread, if any.
    ahead: Option<&'a FingerprintsAhead>,
    def: &'a PackageDef,
    registry: &'a Registry,
    dir: &'a std::path::Path,
    diags: Vec<Diagnostic>,
    vars: VarTable,
    /// Expressions compiled so far (once the variables are all declared).
    memo: ExprMemo,
    nodes: Vec<Node>,
    /// Each node's definition (none for the package), by node index.
    defs: Vec<Option<&'a TaskDef>>,
    /// The event handlers built: the executable each is attached to, its
    /// event, and its nodes (a plan of their own once the package's
    /// settings are known).
    handler_nodes: Vec<(NodeId, HandlerEvent, Vec<Node>)>,
}

/// How many executables these definitions hold, nested ones included.
pub(crate) fn count_defs(defs: &[Spanned<Box<TaskDef>>]) -> usize {
    defs.iter()
        .map(|d| 1 + d.value.tasks.as_deref().map_or(0, count_defs))
        .sum()
}

/// Control characters (C0, DEL, C1) and the Unicode line and paragraph
/// separators: each can break or rewrite a line of output.
fn is_forbidden_in_name(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

impl<'a> Validator<'a> {
    fn err(&mut self, pos: SourcePos, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            pos: Some(pos),
            message: message.into(),
        });
    }

    /// The problems found, in file order.
    fn into_error(mut self, path: &std::path::Path) -> ValidationError {
        self.diags
            .sort_by_key(|d| d.pos.map(|p| (p.line, p.column)).unwrap_or((usize::MAX, 0)));
        ValidationError {
            path: path.to_path_buf(),
            diagnostics: self.diags,
        }
    }

    /// Refuses names holding control characters (a newline, a carriage
    /// return, NUL...): names are printed in logs, summaries and messages,
    /// where such a name could forge or hide a line. The name is shown escaped.
    fn check_names(&mut self) {
        let def = self.def;
        self.check_name("package name", &def.name.value, pos_of(&def.name));
        for (name, var) in &def.variables {
            self.check_name("variable", name, pos_of(var));
        }
        for (name, c) in &def.connections {
            self.check_name("connection", name, pos_of(c));
        }
        self.check_task_names(&def.tasks);
        if let Some(h) = &def.event_handlers {
            for (_, list) in h.value.lists() {
                self.check_task_names(list.unwrap_or_default());
            }
        }
    }

    fn check_task_names(&mut self, defs: &[Spanned<Box<TaskDef>>]) {
        for d in defs {
            let d = &d.value;
            self.check_name("task name", &d.name.value, pos_of(&d.name));
            if let Some(after) = &d.after {
                for a in &after.value {
                    let task = match a {
                        AfterDef::Name(n) => n,
                        AfterDef::Full(c) => &c.task,
                    };
                    self.check_name("`after` names task", task, pos_of(after));
                }
            }
            if let Some(children) = &d.tasks {
                self.check_task_names(children);
            }
            if let Some(h) = &d.event_handlers {
                for (_, list) in h.value.lists() {
                    self.check_task_names(list.unwrap_or_default());
                }
            }
        }
    }

    fn check_name(&mut self, what: &str, name: &str, pos: SourcePos) {
        if let Some(c) = name.chars().find(|&c| is_forbidden_in_name(c)) {
            self.err(
                pos,
                format!(
                    "{what} {name:?} holds a control character (U+{:04X}); names are printed in logs and messages, so they may not hold line breaks, tabs or other control characters",
                    c as u32
                ),
            );
        }
    }

    fn check_package_fields(&mut self) {
        let def = self.def;
        if !is_uuid(def.id.value.trim_matches(|c| c == '{' || c == '}')) {
            self.err(
                pos_of(&def.id),
                format!(
                    "package id \"{}\" is not a UUID (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, e.g. `id: {}`, generated now)",
                    def.id.value,
                    checkflow_model::new_uuid()
                ),
            );
        }
        if let Some(f) = &def.fail_package_on_failure
            && f.value
        {
            self.err(
                    pos_of(f),
                    "fail_package_on_failure is not applicable to the package container; set it on the tasks or containers that should be restart points",
                );
        }
        if let Some(m) = &def.max_concurrent
            && m.value < 1
        {
            self.err(pos_of(m), "max_concurrent must be at least 1");
        }
        if let Some(m) = &def.max_errors
            && m.value < 1
        {
            self.err(pos_of(m), "max_errors must be at least 1");
        }
    }

    fn declare_variables(&mut self) {
        let def = self.def;
        for (name, var) in &def.variables {
            let pos = pos_of(var);
            let r = VarRef::parse(name);
            if r.namespace != "User" {
                self.err(
                    pos,
                    format!("variable \"{name}\": only the User namespace can be declared"),
                );
                continue;
            }
            if r.name.is_empty() {
                self.err(pos, "a variable needs a name");
                continue;
            }
            let Some(ty) = DataType::from_variable_type(&var.value.ty.value) else {
                self.err(
                    pos_of(&var.value.ty),
                    format!(
                        "variable \"{name}\": unknown type \"{}\" (expected boolean, int32, int64, double, decimal, string, datetime or object)",
                        var.value.ty.value
                    ),
                );
                continue;
            };
            if var.value.expr.is_some() && var.value.value.is_some() {
                self.err(
                    pos,
                    format!("variable \"{name}\": give `value` or `expr`, not both"),
                );
            }
            let initial = match &var.value.value {
                Some(j) => match VarValue::from_written(&j.value, &ty) {
                    Ok(v) => v,
                    Err(e) => {
                        self.err(pos, format!("variable \"{name}\": bad value: {e}"));
                        continue;
                    }
                },
                None => default_value(&ty),
            };
            let decl = VarDecl {
                name: r,
                ty,
                initial,
                expr: None,
                env: var.value.env.clone(),
                sensitive: var.value.sensitive,
                read_only: var.value.read_only || var.value.expr.is_some(),
                system: None,
            };
            if self.vars.add(decl).is_none() {
                self.err(pos, format!("variable \"{name}\" is declared twice"));
            }
        }
        for sv in SystemVar::ALL {
            let initial = match sv {
                SystemVar::PackageName => VarValue::Scalar(Value::WStr(def.name.value.clone())),
                SystemVar::PackageId => VarValue::Scalar(Value::WStr(def.id.value.clone())),
                SystemVar::Propagate => VarValue::Scalar(Value::Bool(true)),
                _ => default_value(&sv.data_type()),
            };
            self.vars.add(VarDecl {
                name: VarRef {
                    namespace: "System".into(),
                    name: sv.name().into(),
                },
                ty: sv.data_type(),
                initial,
                expr: None,
                env: None,
                sensitive: false,
                read_only: sv != SystemVar::Propagate,
                system: Some(sv),
            });
        }
        // Expressions of EvaluateAsExpression variables, once all are declared.
        let mut compiled = Vec::new();
        for (name, var) in &def.variables {
            let Some(src) = &var.value.expr else { continue };
            let Some(slot) = self.vars.slot(name) else {
                continue;
            };
            match checkflow_expr::compile(&src.value, &self.vars, false) {
                Ok(c) => compiled.push((slot, c, pos_of(src))),
                Err(e) => self.err(
                    pos_of(src),
                    format!("variable \"{name}\": bad expression: {e}"),
                ),
            }
        }
        // An expression variable may read others, but not in a cycle.
        let deps: HashMap<u32, Vec<u32>> = compiled
            .iter()
            .map(|(slot, c, _)| {
                (
                    *slot,
                    c.variables()
                        .iter()
                        .filter_map(|r| self.vars.slot(&r.qualified()))
                        .collect(),
                )
            })
            .collect();
        for (slot, _, pos) in &compiled {
            if reaches(&deps, *slot, *slot) {
                let n = self.vars.decl(*slot).name.qualified();
                self.err(*pos, format!("variable \"{n}\": its expression refers to itself (through other variables)"));
            }
        }
        for (slot, c, _) in compiled {
            self.vars.decls[slot as usize].expr = Some(c);
        }
    }

    fn check_connections(&mut self) {
        let def = self.def;
        for (name, c) in &def.connections {
            let pos = pos_of(&c.value.kind);
            match c.value.kind.value.as_str() {
                "sqlite" => {
                    if c.value.path.is_none() {
                        self.err(pos, format!("connection \"{name}\": a sqlite connection needs `path`"));
                    }
                }
                "postgres" => {
                    if c.value.url.is_none() && c.value.url_env.is_none() {
                        self.err(pos, format!("connection \"{name}\": a postgres connection needs `url` or `url_env`"));
                    }
                }
                "ftp" | "http" => {}
                other => self.err(
                    pos,
                    format!("connection \"{name}\": unknown kind \"{other}\" (expected sqlite, postgres, ftp or http)"),
                ),
            }
        }
    }

    fn checkpoint_settings(&mut self) -> CheckpointSettings {
        let Some(c) = &self.def.checkpoint else {
            return CheckpointSettings {
                file: None,
                usage: Default::default(),
                save: false,
                store: None,
                key: None,
                lease: None,
            };
        };
        let cp = &c.value;
        let file = self.text_setting("file", cp.file.as_ref(), cp.file_expr.as_ref());
        let usage = cp.usage.unwrap_or_default();
        let save = cp.save.unwrap_or(false);
        if cp.file.is_none()
            && cp.file_expr.is_none()
            && cp.store.is_none()
            && cp.key.is_none()
            && cp.key_expr.is_none()
            && (save || usage != checkflow_model::Usage::Never)
        {
            self.err(
                pos_of(c),
                "checkpoint: `save` or `usage` needs `file`, `file_expr` or `store` (or a `key`, for a store given with --checkpoint-store)",
            );
        }
        let store = cp.store.as_ref().map(|st| {
            if let Some(f) = cp.file.as_ref().or(cp.file_expr.as_ref()) {
                self.err(
                    pos_of(f),
                    "checkpoint: give `store` or `file` / `file_expr`, not both (a checkpoint lives in one place)",
                );
            }
            match self.def.connections.get(&st.value) {
                None => self.err(
                    pos_of(st),
                    format!(
                        "checkpoint store: no connection named \"{}\" (expected the name of a postgres connection under `connections:`)",
                        st.value
                    ),
                ),
                Some(conn) if conn.value.kind.value != "postgres" => self.err(
                    pos_of(st),
                    format!(
                        "checkpoint store: connection \"{}\" is {}, but a shared store is a postgres database",
                        st.value, conn.value.kind.value
                    ),
                ),
                Some(_) => {}
            }
            st.value.clone()
        });
        if let Some(k) = &cp.key
            && k.value.trim().is_empty()
        {
            self.err(
                pos_of(k),
                "checkpoint key: empty (leave it out to use the package id)",
            );
        }
        let key = self.text_setting("key", cp.key.as_ref(), cp.key_expr.as_ref());
        let lease = cp.lease.as_ref().and_then(|l| match parse_lease(&l.value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(pos_of(l), format!("checkpoint lease: {e}"));
                None
            }
        });
        CheckpointSettings {
            file,
            usage,
            save,
            store,
            key,
            lease,
        }
    }

    /// A checkpoint setting given as text (`NAME`) or as an expression that
    /// must give a string (`NAME_expr`), not both: `file`, `key`.
    fn text_setting(
        &mut self,
        name: &str,
        literal: Option<&Spanned<String>>,
        expr: Option<&Spanned<String>>,
    ) -> Option<CheckpointFile> {
        match (literal, expr) {
            (Some(_), Some(e)) => {
                self.err(
                    pos_of(e),
                    format!("checkpoint: give `{name}` or `{name}_expr`, not both"),
                );
                None
            }
            (Some(t), None) => Some(CheckpointFile::Literal(t.value.clone())),
            (None, Some(e)) => match self.memo.compile(&e.value, &self.vars, false) {
                Ok(comp) => {
                    if !matches!(
                        comp.result_type(),
                        DataType::WStr { .. } | DataType::Str { .. }
                    ) {
                        self.err(
                            pos_of(e),
                            format!(
                                "checkpoint {name}_expr must give a string, it gives {}",
                                comp.result_type().ssis_name()
                            ),
                        );
                    }
                    Some(CheckpointFile::Expr(comp))
                }
                Err(err) => {
                    self.err(
                        pos_of(e),
                        format!("checkpoint {name}_expr: bad expression: {err}"),
                    );
                    None
                }
            },
            (None, None) => None,
        }
    }

    fn restart_settings(&mut self) -> RestartSettings {
        let Some(r) = &self.def.restart else {
            return RestartSettings::default();
        };
        let r = &r.value;
        let attempts = match &r.attempts {
            Some(a) if !(0..=1000).contains(&a.value) => {
                self.err(
                    pos_of(a),
                    format!("restart attempts: {} is not between 0 and 1000", a.value),
                );
                0
            }
            Some(a) => a.value as u32,
            None => 1,
        };
        let delay = match &r.delay {
            Some(d) => match parse_duration(&d.value) {
                Ok(d) => d,
                Err(e) => {
                    self.err(pos_of(d), format!("restart delay: {e}"));
                    Duration::ZERO
                }
            },
            None => Duration::ZERO,
        };
        let backoff = match &r.backoff {
            Some(b) if !(b.value >= 1.0 && b.value <= 100.0) => {
                self.err(pos_of(b), format!("restart backoff: {} is not between 1 and 100 (the delay is multiplied by it for every restart)", b.value));
                1.0
            }
            Some(b) => b.value,
            None => 1.0,
        };
        RestartSettings {
            attempts,
            delay,
            backoff,
        }
    }

    fn build_root(&mut self) {
        let def = self.def;
        self.nodes.push(Node {
            id: NodeId(0),
            name: def.name.value.clone(),
            path: String::new(),
            parent: None,
            kind: NodeKind::Package,
            children: Vec::new(),
            preds: Vec::new(),
            succs: Vec::new(),
            logic: Logic::And,
            disabled: false,
            fail_package: false,
            fail_parent: false,
            max_errors: def
                .max_errors
                .as_ref()
                .map(|m| m.value.max(1) as u32)
                .unwrap_or(1),
            force_result: None,
            transacted: false,
            starts_transaction: false,
            retries: 0,
            retry_delay: Duration::from_secs(1),
            timeout: None,
            prop_exprs: Vec::new(),
            fingerprint: String::new(),
            recordable: true,
            atomic: false,
            pos: pos_of(&def.name),
            handlers: None,
        });
        let children = self.build_children(NodeId(0), &def.tasks, def.flow.unwrap_or_default());
        self.nodes[0].children = children;
        self.finish(NodeId(0));
    }

    /// Builds the children of `parent` and their precedence edges.
    fn build_children(
        &mut self,
        parent: NodeId,
        defs: &'a [Spanned<Box<TaskDef>>],
        flow: Flow,
    ) -> Vec<NodeId> {
        let mut ids = Vec::with_capacity(defs.len());
        // Each definition that built, with its node (one that did not, e.g.
        // of an unknown type, has its error already and no node).
        let mut built = Vec::with_capacity(defs.len());
        let mut by_name: HashMap<&str, NodeId, crate::PathHash> =
            HashMap::with_capacity_and_hasher(defs.len(), crate::PathHash);
        let mut unbuilt: Vec<&str> = Vec::new();
        for d in defs {
            let name = d.value.name.value.as_str();
            if let Some(id) = self.build_node(parent, d) {
                if by_name.insert(name, id).is_some() {
                    let where_ = self.container_label(parent);
                    self.err(
                        pos_of(&d.value.name),
                        format!("duplicate name \"{name}\" in {where_}"),
                    );
                }
                ids.push(id);
                built.push((d, id));
            } else {
                unbuilt.push(name);
            }
        }
        let graph = defs.iter().any(|d| d.value.after.is_some());
        if graph {
            for &(d, id) in &built {
                let Some(after) = &d.value.after else {
                    continue;
                };
                let mut preds = Vec::new();
                for a in &after.value {
                    let (task, on, expr) = match a {
                        AfterDef::Name(n) => (n.as_str(), On::Success, None),
                        AfterDef::Full(c) => (c.task.as_str(), c.on, c.expr.as_deref()),
                    };
                    let Some(&from) = by_name.get(task) else {
                        if unbuilt.contains(&task) {
                            // It exists but could not be built: its own
                            // error says why; this `after` is not wrong.
                            continue;
                        }
                        let me = d.value.name.value.as_str();
                        let known: Vec<&str> =
                            by_name.keys().copied().filter(|k| *k != me).collect();
                        let where_ = self.container_label(parent);
                        self.err(
                            pos_of(after),
                            format!(
                                "\"{}\" runs after \"{task}\", but {where_} has no executable of that name (siblings: {})",
                                d.value.name.value,
                                sorted_join(&known)
                            ),
                        );
                        continue;
                    };
                    if from == id {
                        self.err(pos_of(after), format!("\"{task}\" cannot run after itself"));
                        continue;
                    }
                    let expr = match expr {
                        Some(src) => {
                            match self.memo.compile(src, &self.vars, false) {
                                Ok(c) if *c.result_type() == DataType::Bool => Some(Box::new(c)),
                                Ok(c) => {
                                    self.err(
                                    pos_of(after),
                                    format!("constraint expression must be boolean, \"{src}\" gives {}", c.result_type().ssis_name()),
                                );
                                    None
                                }
                                Err(e) => {
                                    self.err(
                                        pos_of(after),
                                        format!("constraint on \"{task}\": bad expression: {e}"),
                                    );
                                    None
                                }
                            }
                        }
                        None => None,
                    };
                    preds.push(Constraint { from, on, expr });
                }
                for c in &preds {
                    self.nodes[c.from.index()].succs.push(id);
                }
                self.nodes[id.index()].preds = preds;
            }
            self.check_cycles(parent, &ids);
        } else if flow == Flow::Sequence {
            // One edge each way per task: exact capacity, not the four slots
            // a first `push` reserves.
            for w in ids.windows(2) {
                let preds = &mut self.nodes[w[1].index()].preds;
                preds.reserve_exact(1);
                preds.push(Constraint {
                    from: w[0],
                    on: On::Success,
                    expr: None,
                });
                let succs = &mut self.nodes[w[0].index()].succs;
                succs.reserve_exact(1);
                succs.push(w[1]);
            }
        }
        ids
    }

    fn container_label(&self, id: NodeId) -> String {
        let n = &self.nodes[id.index()];
        if n.parent.is_none() {
            "the package".to_string()
        } else {
            format!("container \"{}\"", n.path)
        }
    }

    fn check_cycles(&mut self, parent: NodeId, ids: &[NodeId]) {
        // Kahn's algorithm over the siblings; what remains is on a cycle.
        let mut indeg: HashMap<NodeId, usize> = ids
            .iter()
            .map(|&i| (i, self.nodes[i.index()].preds.len()))
            .collect();
        let mut queue: Vec<NodeId> = ids.iter().copied().filter(|i| indeg[i] == 0).collect();
        while let Some(n) = queue.pop() {
            for &s in &self.nodes[n.index()].succs {
                if let Some(d) = indeg.get_mut(&s) {
                    *d -= 1;
                    if *d == 0 {
                        queue.push(s);
                    }
                }
            }
        }
        let mut cyc: Vec<NodeId> = indeg
            .into_iter()
            .filter(|(_, d)| *d > 0)
            .map(|(i, _)| i)
            .collect();
        if !cyc.is_empty() {
            cyc.sort();
            let names: Vec<&str> = cyc
                .iter()
                .map(|i| self.nodes[i.index()].name.as_str())
                .collect();
            let msg = format!(
                "precedence constraints in {} form a cycle through {}",
                self.container_label(parent),
                names
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let pos = self.nodes[cyc[0].index()].pos;
            self.err(pos, msg);
        }
    }

    fn build_node(&mut self, parent: NodeId, sd: &'a Spanned<Box<TaskDef>>) -> Option<NodeId> {
        let d = &sd.value;
        let pos = pos_of(sd);
        let name = d.name.value.as_str();
        if name.trim().is_empty() {
            self.err(pos_of(&d.name), "an executable needs a non-empty name");
        }
        if name.contains('/') {
            self.err(
                pos_of(&d.name),
                format!("name \"{name}\" must not contain '/' (it separates path parts)"),
            );
        }
        let parent_node = &self.nodes[parent.index()];
        let path = if parent_node.path.is_empty() {
            name.to_string()
        } else {
            format!("{}/{}", parent_node.path, name)
        };
        let parent_transacted = parent_node.transacted;
        let kind_name = d.kind.value.as_str();

        // Which type-specific fields this type accepts.
        let container_fields = CONTAINER_FIELDS
            .iter()
            .find(|(n, _)| *n == kind_name)
            .map(|(_, f)| *f);
        let task_type = self.registry.get(kind_name);
        let accepted: &[&str] = match (container_fields, task_type) {
            (Some(f), _) => f,
            (None, Some(t)) => t.fields(),
            (None, None) => {
                let mut known: Vec<&str> = CONTAINER_FIELDS.iter().map(|(n, _)| *n).collect();
                known.extend(self.registry.names());
                self.err(
                    pos_of(&d.kind),
                    format!(
                        "\"{name}\": unknown type \"{kind_name}\" (expected one of: {})",
                        known.join(", ")
                    ),
                );
                return None;
            }
        };
        let mut rejected = Vec::new();
        d.each_specific_key(|key| {
            if !accepted.contains(&key) {
                rejected.push(key);
            }
        });
        for key in rejected {
            self.err(
                pos,
                format!(
                    "\"{name}\": field `{key}` does not apply to {} {kind_name} (it takes: {})",
                    article(kind_name),
                    accepted.join(", ")
                ),
            );
        }

        let id = NodeId(self.nodes.len() as u32);
        let transaction = d.transaction.unwrap_or_default();
        // As in SSIS, Required starts a transaction unless the container
        // above already runs in one, which it then joins.
        let starts_transaction = transaction == TransactionOption::Required && !parent_transacted;
        let transacted = match transaction {
            TransactionOption::Required => true,
            TransactionOption::Supported => parent_transacted,
            TransactionOption::NotSupported => false,
        };
        let retries = match &d.retries {
            Some(r) if r.value < 0 => {
                self.err(pos_of(r), "retries must be 0 or more");
                0
            }
            Some(r) => r.value as u32,
            None => 0,
        };
        let retry_delay = self
            .duration(d.retry_delay.as_ref(), name, "retry_delay")
            .unwrap_or(Duration::from_secs(1));
        let timeout = self.duration(d.timeout.as_ref(), name, "timeout");
        let max_errors = match &d.max_errors {
            Some(m) if m.value < 1 => {
                self.err(pos_of(m), "max_errors must be at least 1");
                1
            }
            Some(m) => m.value as u32,
            None => 1,
        };
        let mut prop_exprs = Vec::new();
        if let Some(ex) = &d.expressions {
            for (prop, src) in &ex.value {
                if !accepted.contains(&prop.as_str()) && prop != "disabled" {
                    self.err(
                        pos_of(ex),
                        format!(
                            "\"{name}\": no property `{prop}` to set by expression on a {kind_name}"
                        ),
                    );
                    continue;
                }
                match self.memo.compile(src, &self.vars, false) {
                    Ok(c) => prop_exprs.push((prop.clone(), c)),
                    Err(e) => self.err(
                        pos_of(ex),
                        format!("\"{name}\": property expression `{prop}`: {e}"),
                    ),
                }
            }
        }
        self.defs.resize(id.index(), None);
        self.defs.push(Some(d));
        self.nodes.push(Node {
            id,
            name: name.to_string(),
            path,
            parent: Some(parent),
            kind: NodeKind::Sequence, // replaced below
            children: Vec::new(),
            preds: Vec::new(),
            succs: Vec::new(),
            logic: d.after_logic.unwrap_or_default(),
            disabled: d.disabled.unwrap_or(false),
            fail_package: d.fail_package_on_failure.unwrap_or(false),
            fail_parent: d.fail_parent_on_failure.unwrap_or(false),
            max_errors,
            force_result: d.force_result,
            transacted,
            starts_transaction,
            retries,
            retry_delay,
            timeout,
            prop_exprs,
            fingerprint: String::new(),
            recordable: true,
            atomic: false,
            pos,
            handlers: None,
        });

        let kind = if container_fields.is_some() {
            if d.restart_unit == Some(true) && kind_name == "package" {
                self.err(pos, "restart_unit applies to containers");
            }
            let kind = self.container_kind(d, pos);
            let children = match &d.tasks {
                Some(t) => self.build_children(id, t, d.flow.unwrap_or_default()),
                None => Vec::new(),
            };
            self.nodes[id.index()].children = children;
            kind
        } else {
            let t = task_type.expect("matched above");
            let mut cx = BuildCx {
                vars: &self.vars,
                memo: &mut self.memo,
                diags: &mut self.diags,
                dir: self.dir,
                connections: &self.def.connections,
                pos,
                task: name,
            };
            match t.build(d, &mut cx) {
                Some(action) => NodeKind::Task {
                    type_name: t.name(),
                    action,
                },
                None => NodeKind::Sequence,
            }
        };
        let is_loop = matches!(kind, NodeKind::ForLoop(_) | NodeKind::Foreach { .. });
        let node = &mut self.nodes[id.index()];
        node.atomic =
            kind.is_container() && (is_loop || transacted || d.restart_unit == Some(true));
        node.kind = kind;
        Some(id)
    }

    fn duration(
        &mut self,
        s: Option<&Spanned<String>>,
        task: &str,
        field: &str,
    ) -> Option<Duration> {
        let s = s?;
        match parse_duration(&s.value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(pos_of(s), format!("\"{task}\": {field}: {e}"));
                None
            }
        }
    }

    fn compile_at(
        &mut self,
        s: &Spanned<String>,
        assign: bool,
        what: &str,
    ) -> Option<checkflow_expr::Compiled> {
        match self.memo.compile(&s.value, &self.vars, assign) {
            Ok(c) => Some(c),
            Err(e) => {
                self.err(pos_of(s), format!("{what}: {e}"));
                None
            }
        }
    }

    fn container_kind(&mut self, d: &TaskDef, pos: SourcePos) -> NodeKind {
        let name = &d.name.value;
        match d.kind.value.as_str() {
            "for_loop" => {
                let loops = d.loops();
                let init = loops
                    .init
                    .as_ref()
                    .and_then(|s| self.compile_at(s, true, &format!("\"{name}\" init")));
                let assign = loops
                    .assign
                    .as_ref()
                    .and_then(|s| self.compile_at(s, true, &format!("\"{name}\" assign")));
                let eval = match &loops.eval {
                    Some(s) => self.compile_at(s, false, &format!("\"{name}\" eval")),
                    None => {
                        self.err(pos, format!("\"{name}\": a for_loop needs `eval`"));
                        None
                    }
                };
                if let (Some(e), Some(s)) = (&eval, &loops.eval)
                    && *e.result_type() != DataType::Bool
                {
                    self.err(
                        pos_of(s),
                        format!(
                            "\"{name}\": eval must be boolean, it gives {}",
                            e.result_type().ssis_name()
                        ),
                    );
                }
                match eval {
                    Some(eval) => NodeKind::ForLoop(Box::new(LoopExprs { init, eval, assign })),
                    None => NodeKind::Sequence,
                }
            }
            "foreach" => self.foreach_kind(d, pos),
            _ => NodeKind::Sequence,
        }
    }

    fn foreach_kind(&mut self, d: &TaskDef, pos: SourcePos) -> NodeKind {
        let name = &d.name.value;
        let loops = d.loops();
        let count = [
            loops.items.is_some(),
            loops.files.is_some(),
            loops.rows.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if count != 1 {
            self.err(
                pos,
                format!(
                    "\"{name}\": a foreach needs exactly one enumerator: `items`, `files` or `rows`"
                ),
            );
            return NodeKind::Sequence;
        }
        let mut map = Vec::new();
        if let Some(m) = &loops.map {
            for v in &m.value {
                match self.vars.slot(v) {
                    None => self.err(
                        pos_of(m),
                        format!("\"{name}\": map names unknown variable \"{v}\""),
                    ),
                    Some(slot) => {
                        let decl = self.vars.decl(slot);
                        if decl.read_only || decl.system.is_some() {
                            self.err(
                                pos_of(m),
                                format!("\"{name}\": map names read-only variable \"{v}\""),
                            );
                        } else {
                            map.push(slot);
                        }
                    }
                }
            }
        }
        let enumerator = if let Some(items) = &loops.items {
            let rows: Vec<Vec<serde_json::Value>> = items
                .value
                .iter()
                .map(|i| match i {
                    serde_json::Value::Array(a) => a.clone(),
                    other => vec![other.clone()],
                })
                .collect();
            for (k, r) in rows.iter().enumerate() {
                if r.len() < map.len() {
                    self.err(
                        pos_of(items),
                        format!(
                            "\"{name}\": item {} has {} value(s) but map names {} variable(s)",
                            k + 1,
                            r.len(),
                            map.len()
                        ),
                    );
                }
                for (val, &slot) in r.iter().zip(&map) {
                    let ty = self.vars.decl(slot).ty.clone();
                    if let Err(e) = VarValue::from_written(val, &ty) {
                        let vn = self.vars.decl(slot).name.qualified();
                        self.err(
                            pos_of(items),
                            format!("\"{name}\": item {} does not fit {vn}: {e}", k + 1),
                        );
                    }
                }
            }
            Enumerator::Items(rows)
        } else if let Some(f) = &loops.files {
            if map.len() > 1 {
                self.err(
                    pos_of(f),
                    format!(
                        "\"{name}\": a files enumerator gives one value per item; map names {}",
                        map.len()
                    ),
                );
            }
            if let Some(&slot) = map.first()
                && !matches!(
                    self.vars.decl(slot).ty,
                    DataType::WStr { .. } | DataType::Str { .. }
                )
            {
                self.err(
                    pos_of(f),
                    format!("\"{name}\": a files enumerator maps into a string variable"),
                );
            }
            Enumerator::Files {
                folder: crate::task::resolve(self.dir, &f.value.folder),
                pattern: f.value.pattern.clone().unwrap_or_else(|| "*".into()),
                recursive: f.value.recursive,
                retrieve: f.value.retrieve,
            }
        } else if let Some(r) = &loops.rows {
            match self.vars.slot(&r.value) {
                None => {
                    self.err(
                        pos_of(r),
                        format!("\"{name}\": rows names unknown variable \"{}\"", r.value),
                    );
                    return NodeKind::Sequence;
                }
                Some(slot) if self.vars.decl(slot).ty != DataType::Object => {
                    self.err(
                        pos_of(r),
                        format!(
                            "\"{name}\": rows needs an object variable, \"{}\" is not one",
                            r.value
                        ),
                    );
                    return NodeKind::Sequence;
                }
                Some(slot) => Enumerator::Rows(slot),
            }
        } else {
            return NodeKind::Sequence;
        };
        NodeKind::Foreach {
            enumerator,
            map,
            checkpoint_iterations: loops.checkpoint_iterations.unwrap_or(false),
        }
    }

    /// Fills fingerprints (bottom-up) and recordability (top-down).
    /// Builds every event handler of the package and its executables. Each
    /// is a control flow of its own under a package node of its own, built
    /// with the package's variables and connections; nothing in it is
    /// recorded, and its executables may not have handlers of their own.
    fn build_handlers(&mut self) {
        for i in 0..self.nodes.len() {
            let handlers = if i == 0 {
                self.def.event_handlers.as_ref()
            } else {
                self.defs
                    .get(i)
                    .copied()
                    .flatten()
                    .and_then(|d| d.event_handlers.as_ref())
            };
            let Some(h) = handlers else { continue };
            for (event, (key, list)) in HandlerEvent::ALL.into_iter().zip(h.value.lists()) {
                debug_assert_eq!(event.key(), key);
                let Some(list) = list else { continue };
                let nodes = self.build_handler(NodeId(i as u32), event, list);
                self.handler_nodes.push((NodeId(i as u32), event, nodes));
            }
        }
    }

    fn build_handler(
        &mut self,
        attached: NodeId,
        event: HandlerEvent,
        defs: &'a [Spanned<Box<TaskDef>>],
    ) -> Vec<Node> {
        let label = self.container_label(attached);
        let main_nodes = std::mem::take(&mut self.nodes);
        let main_defs = std::mem::take(&mut self.defs);
        let ahead = self.ahead.take();
        let mut root = main_nodes[0].clone();
        root.name = format!("{} of {label}", event.key());
        root.children = Vec::new();
        root.max_errors = 1;
        root.recordable = false;
        root.handlers = None;
        root.fingerprint = String::new();
        self.nodes.push(root);
        let children = self.build_children(NodeId(0), defs, Flow::Sequence);
        self.nodes[0].children = children;
        self.finish(NodeId(0));
        let inner: Vec<&'a TaskDef> = self.defs.iter().flatten().copied().collect();
        for d in inner {
            if let Some(h) = &d.event_handlers {
                self.err(
                    pos_of(h),
                    format!(
                        "\"{}\" is in the {} handler of {label}: an executable inside an event handler cannot have event handlers of its own",
                        d.name.value,
                        event.key()
                    ),
                );
            }
        }
        self.defs = main_defs;
        self.ahead = ahead;
        std::mem::replace(&mut self.nodes, main_nodes)
    }

    fn finish(&mut self, root: NodeId) {
        let mut order = Vec::new();
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            order.push(n);
            stack.extend(self.nodes[n.index()].children.iter().copied());
        }
        for &n in &order {
            if let Some(p) = self.nodes[n.index()].parent {
                let pn = &self.nodes[p.index()];
                let rec = pn.recordable && !pn.atomic;
                self.nodes[n.index()].recordable = rec;
            }
        }
        for &n in order.iter().rev() {
            let node = &self.nodes[n.index()];
            let child_fps: Vec<String> = node
                .children
                .iter()
                .map(|c| self.nodes[c.index()].fingerprint.clone())
                .collect();
            let fp = match (self.defs.get(n.index()).copied().flatten(), self.ahead) {
                // Node ids follow the pre-order of the definitions, after the package's.
                (Some(d), Some(a)) if child_fps.is_empty() => a.leaf(n.index() - 1, d),
                (Some(d), _) => fingerprint(d, &child_fps),
                (None, _) => fingerprint_root(&child_fps),
            };
            self.nodes[n.index()].fingerprint = fp;
        }
        if let Some(a) = self.ahead {
            a.done();
        }
    }
}

fn fingerprint_root(children: &[String]) -> String {
    crate::fingerprint::hash_parts(&["package"], children)
}

fn reaches(deps: &HashMap<u32, Vec<u32>>, from: u32, target: u32) -> bool {
    let mut seen = HashSet::new();
    let mut stack: Vec<u32> = deps.get(&from).cloned().unwrap_or_default();
    while let Some(n) = stack.pop() {
        if n == target {
            return true;
        }
        if seen.insert(n) {
            stack.extend(deps.get(&n).cloned().unwrap_or_default());
        }
    }
    false
}

/// "a" or "an" before a type name.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn sorted_join(names: &[&str]) -> String {
    let mut v: Vec<&str> = names.to_vec();
    v.sort();
    if v.is_empty() {
        "none".into()
    } else {
        v.iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The value a variable starts with when the package gives none (as SSIS: 0, "", false).
pub(crate) fn default_value(ty: &DataType) -> VarValue {
    let text = match ty {
        DataType::Object => return VarValue::Object(serde_json::Value::Null),
        DataType::Bool => "false",
        DataType::WStr { .. } | DataType::Str { .. } => "",
        DataType::DbTimestamp | DataType::Date => "1899-12-30 00:00:00",
        DataType::DbDate => "1899-12-30",
        _ => "0",
    };
    Value::parse_as(text, ty)
        .map(VarValue::Scalar)
        .unwrap_or(VarValue::Scalar(Value::Null(ty.clone())))
}
