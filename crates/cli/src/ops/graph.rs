//! `checkflow graph`: the control flow as Graphviz dot or Mermaid.

use crate::args::GraphFormat;
use crate::exit;
use crate::session::{Fail, load_plan};
use checkflow_model::On;
use checkflow_plan::{NodeId, Plan};
use std::fmt::Write;
use std::path::Path;

fn id(n: NodeId) -> String {
    format!("n{}", n.0)
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn edge_label(on: On, expr: Option<&str>) -> String {
    let base = match on {
        On::Success => "success",
        On::Failure => "failure",
        On::Completion => "completion",
    };
    match expr {
        Some(e) => format!("{base} && {e}"),
        None => base.into(),
    }
}

fn dot(plan: &Plan, n: NodeId, out: &mut String, depth: usize) {
    let pad = "  ".repeat(depth);
    for &c in &plan.node(n).children {
        let node = plan.node(c);
        let label = format!("{}\\n({})", esc(&node.name), node.kind.type_name());
        if node.kind.is_container() {
            let _ = writeln!(
                out,
                "{pad}subgraph cluster_{} {{\n{pad}  label=\"{label}\";",
                c.0
            );
            let _ = writeln!(out, "{pad}  {} [shape=point, label=\"\"];", id(c));
            dot(plan, c, out, depth + 1);
            let _ = writeln!(out, "{pad}}}");
        } else {
            let style = if node.fail_package {
                ", peripheries=2"
            } else {
                ""
            };
            let _ = writeln!(out, "{pad}{} [label=\"{label}\"{style}];", id(c));
        }
        for p in &node.preds {
            let color = match p.on {
                On::Success => "green",
                On::Failure => "red",
                On::Completion => "blue",
            };
            let l = edge_label(p.on, p.expr.as_ref().map(|e| e.source()));
            let _ = writeln!(
                out,
                "{pad}{} -> {} [color={color}, label=\"{}\"];",
                id(p.from),
                id(c),
                esc(&l)
            );
        }
    }
}

fn mermaid(plan: &Plan, n: NodeId, out: &mut String, depth: usize) {
    let pad = "  ".repeat(depth);
    for &c in &plan.node(n).children {
        let node = plan.node(c);
        let label = format!(
            "{} ({})",
            node.name.replace('"', "'"),
            node.kind.type_name()
        );
        if node.kind.is_container() {
            let _ = writeln!(out, "{pad}subgraph {}[\"{label}\"]", id(c));
            mermaid(plan, c, out, depth + 1);
            let _ = writeln!(out, "{pad}end");
        } else {
            let _ = writeln!(out, "{pad}{}[\"{label}\"]", id(c));
        }
        for p in &node.preds {
            let l = edge_label(p.on, p.expr.as_ref().map(|e| e.source()))
                .replace('"', "'")
                .replace('|', "/");
            let _ = writeln!(out, "{pad}{} -->|\"{l}\"| {}", id(p.from), id(c));
        }
    }
}

pub fn graph(path: &Path, format: GraphFormat) -> Result<i32, Fail> {
    let plan = load_plan(path)?;
    let mut out = String::new();
    match format {
        GraphFormat::Dot => {
            let _ = writeln!(
                out,
                "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box];",
                esc(&plan.package.name)
            );
            dot(&plan, Plan::ROOT, &mut out, 1);
            out.push_str("}\n");
        }
        GraphFormat::Mermaid => {
            out.push_str("flowchart TD\n");
            mermaid(&plan, Plan::ROOT, &mut out, 1);
        }
    }
    super::emit(&out)?;
    Ok(exit::SUCCESS)
}
