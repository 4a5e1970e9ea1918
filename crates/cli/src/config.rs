//! The configuration a run is given (`--config`, `--set`, environment
//! bindings), the checkpoint settings the command line makes effective, and
//! the variables' values at start.

use crate::args::{OnOff, Restart, RunOpts};
use crate::exit;
use crate::session::Fail;
use checkflow_expr::Value;
use checkflow_model::Usage;
use checkflow_plan::{Plan, SystemVar, VarValue};
use std::collections::BTreeMap;

/// One configuration value: where it came from and its text.
#[derive(Clone, Debug)]
pub struct ConfigValue {
    pub json: serde_json::Value,
    pub source: String,
}

fn parse_set(s: &str) -> Result<(String, String), Fail> {
    // dtexec's form: a property path, `;`, the value.
    if s.trim_start().starts_with('\\') {
        return parse_dtexec_set(s);
    }
    let (name, value) = s.split_once('=').ok_or_else(|| {
        Fail::new(
            exit::BAD_COMMAND_LINE,
            format!(
                "--set \"{s}\": expected User::Name=VALUE (or dtexec's \\Package.Variables[User::Name].Value;VALUE)"
            ),
        )
    })?;
    let name = name.trim();
    if name.is_empty() {
        return Err(Fail::new(
            exit::BAD_COMMAND_LINE,
            format!("--set \"{s}\": no variable name before '=' (expected User::Name=VALUE)"),
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// dtexec's `/SET` value: `\Package.Variables[User::Day].Properties[Value];VALUE`
/// or the short `\Package.Variables[User::Day].Value;VALUE`. The path ends at
/// the first `;` (a path holds none); the value may hold more. As dtexec does,
/// one pair of double quotes around the value is removed (a Windows shell
/// passes them on). `=` after the path is accepted too.
fn parse_dtexec_set(s: &str) -> Result<(String, String), Fail> {
    let bad = |why: &str| {
        Fail::new(
            exit::BAD_COMMAND_LINE,
            format!(
                "--set \"{s}\": {why}; expected \\Package.Variables[User::Name].Value;VALUE or \\Package.Variables[User::Name].Properties[Value];VALUE"
            ),
        )
    };
    let sep = s
        .find([';', '='])
        .ok_or_else(|| bad("no ';' between the property path and the value"))?;
    let (path, value) = (s[..sep].trim(), &s[sep + 1..]);
    let path = path.trim_matches('"');
    let lower = path.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("\\package.variables[") else {
        return Err(bad("only package variables can be set"));
    };
    let close = rest
        .find(']')
        .ok_or_else(|| bad("the variable's name is not closed by ']'"))?;
    let property = &rest[close + 1..];
    if property != ".value" && property != ".properties[value]" {
        return Err(bad("only the Value property can be set"));
    }
    // The name keeps its case (names are case-sensitive): cut it from `path`.
    let start = "\\package.variables[".len();
    let name = path[start..start + close].trim();
    if name.is_empty() {
        return Err(bad("no variable name between '[' and ']'"));
    }
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Ok((name.to_string(), value.to_string()))
}

/// The configuration given now: --config, then --set, then environment bindings.
pub(crate) fn gather_config(
    plan: &Plan,
    opts: &RunOpts,
) -> Result<BTreeMap<String, ConfigValue>, Fail> {
    let text = opts.config.as_deref().map(read_config).transpose()?;
    gather_config_from(plan, opts, text.as_deref())
}

/// The text of `--config FILE` (`-`: standard input, how a parent package
/// passes bound values). Read once: standard input cannot be read again.
pub(crate) fn read_config(file: &std::path::Path) -> Result<String, Fail> {
    if file.as_os_str() == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).map(|_| t)
    } else {
        checkflow_files::read_to_string(file, checkflow_files::Links::Follow)
    }
    .map_err(|e| {
        Fail::new(
            exit::BAD_COMMAND_LINE,
            format!("cannot read config file {}: {e}", file.display()),
        )
    })
}

/// [`gather_config`] with the text of `--config` already read (`text`).
pub(crate) fn gather_config_from(
    plan: &Plan,
    opts: &RunOpts,
    text: Option<&str>,
) -> Result<BTreeMap<String, ConfigValue>, Fail> {
    let mut out = BTreeMap::new();
    let qualify = |name: &str| -> Result<(u32, String), Fail> {
        let slot = plan.vars.slot(name).ok_or_else(|| {
            Fail::new(
                exit::BAD_COMMAND_LINE,
                format!("variable \"{name}\" is not declared in the package"),
            )
        })?;
        let d = plan.vars.decl(slot);
        if d.system.is_some() {
            return Err(Fail::new(
                exit::BAD_COMMAND_LINE,
                format!("variable \"{name}\" is read-only"),
            ));
        }
        Ok((slot, d.name.qualified()))
    };
    if let (Some(file), Some(text)) = (&opts.config, text) {
        let map: BTreeMap<String, serde_json::Value> =
            serde_saphyr::from_str_with_options(text, checkflow_model::yaml_options()).map_err(
                |e| {
                    Fail::new(
                        exit::BAD_COMMAND_LINE,
                        format!(
                            "config file {}: {}",
                            file.display(),
                            checkflow_model::yaml_error_message(&e)
                        ),
                    )
                },
            )?;
        for (k, v) in map {
            let (_, q) = qualify(&k).map_err(|f| {
                Fail::new(
                    f.code,
                    format!("config file {}: {}", file.display(), f.message),
                )
            })?;
            out.insert(
                q,
                ConfigValue {
                    json: v,
                    source: format!("--config {}", file.display()),
                },
            );
        }
    }
    for s in &opts.set {
        let (k, v) = parse_set(s)?;
        let (_, q) = qualify(&k)?;
        out.insert(
            q,
            ConfigValue {
                json: serde_json::Value::String(v),
                source: "--set".into(),
            },
        );
    }
    for d in &plan.vars.decls {
        if let Some(env) = &d.env {
            let q = d.name.qualified();
            if out.contains_key(&q) {
                continue;
            }
            let v = match std::env::var(env) {
                Ok(v) => v,
                Err(std::env::VarError::NotPresent) => continue,
                // Set but unreadable is a bad value, not an absent one: the
                // package's default would silently stand in for it.
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(Fail::new(
                        exit::BAD_COMMAND_LINE,
                        format!("environment {env} value for {q}: is not valid UTF-8"),
                    ));
                }
            };
            out.insert(
                q,
                ConfigValue {
                    json: serde_json::Value::String(v),
                    source: format!("environment {env}"),
                },
            );
        }
    }
    // Check every value fits its variable now, before anything runs.
    for (k, v) in &out {
        let slot = plan.vars.slot(k).expect("qualified above");
        VarValue::from_written(&v.json, &plan.vars.decl(slot).ty).map_err(|e| {
            Fail::new(
                exit::BAD_COMMAND_LINE,
                format!("{} value for {k}: {e}", v.source),
            )
        })?;
    }
    Ok(out)
}

pub(crate) fn effective_settings(
    mut usage: Usage,
    mut save: bool,
    opts: &RunOpts,
) -> (Usage, bool) {
    match opts.checkpointing {
        Some(OnOff::On) => {
            usage = Usage::Always;
            save = true;
        }
        Some(OnOff::Off) => {
            usage = Usage::Never;
            save = false;
        }
        None => {}
    }
    match opts.restart {
        Some(Restart::Deny) => usage = Usage::Never,
        Some(Restart::Force) => usage = Usage::Always,
        Some(Restart::IfPossible) => usage = Usage::IfExists,
        None => {}
    }
    (usage, save)
}

fn machine_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Defaults, then configuration, then system values.
pub(crate) fn initial_values(
    plan: &Plan,
    config: &BTreeMap<String, ConfigValue>,
    run_id: &str,
    start: jiff::civil::DateTime,
) -> Result<Vec<VarValue>, Fail> {
    let mut values: Vec<VarValue> = plan.vars.decls.iter().map(|d| d.initial.clone()).collect();
    for (name, v) in config {
        let Some(slot) = plan.vars.slot(name) else {
            continue;
        };
        let decl = plan.vars.decl(slot);
        let val = VarValue::from_written(&v.json, &decl.ty).map_err(|e| {
            Fail::new(
                exit::BAD_COMMAND_LINE,
                format!("{} value for {name}: {e}", v.source),
            )
        })?;
        values[slot as usize] = val;
    }
    let set = |values: &mut Vec<VarValue>, sv: SystemVar, v: Value| {
        values[plan.vars.system_slot(sv) as usize] = VarValue::Scalar(v)
    };
    set(&mut values, SystemVar::StartTime, Value::DbTimestamp(start));
    set(
        &mut values,
        SystemVar::ExecutionInstanceGuid,
        Value::WStr(format!("{{{}}}", run_id.to_uppercase())),
    );
    set(
        &mut values,
        SystemVar::MachineName,
        Value::WStr(machine_name()),
    );
    Ok(values)
}

#[cfg(test)]
mod set_tests {
    use super::parse_set;

    #[test]
    fn dtexec_set_forms_name_the_variable_and_keep_the_value() {
        let ok = |s: &str| parse_set(s).map_err(|e| e.message).expect("parses");
        let day = ("User::Day".to_string(), "2026-11-21".to_string());
        assert_eq!(ok("User::Day=2026-11-21"), day);
        assert_eq!(
            ok("\\Package.Variables[User::Day].Properties[Value];2026-11-21"),
            day
        );
        assert_eq!(ok("\\Package.Variables[User::Day].Value;2026-11-21"), day);
        assert_eq!(ok("\\package.variables[User::Day].VALUE;2026-11-21"), day);
        assert_eq!(ok("\\Package.Variables[User::Day].Value=2026-11-21"), day);
        assert_eq!(
            ok("\\Package.Variables[User::Note].Value;\"a;b = c\""),
            ("User::Note".to_string(), "a;b = c".to_string())
        );
        assert_eq!(
            ok("\\Package.Variables[Day].Value;"),
            ("Day".to_string(), String::new())
        );
        for bad in [
            "\\Package.Connections[dw].Properties[ServerName];x",
            "\\Package.Variables[User::Day].Properties[Description];x",
            "\\Package.Variables[User::Day.Value;x",
            "\\Package.Variables[].Value;x",
            "\\Package.Variables[User::Day].Value",
            "User::Day",
        ] {
            let e = parse_set(bad).expect_err(bad);
            assert_eq!(e.code, crate::exit::BAD_COMMAND_LINE, "{bad}");
            assert!(e.message.contains("expected"), "{bad}: {}", e.message);
        }
    }
}
