//! The Expression task: evaluates an expression, usually an assignment
//! (`@[User::X] = @[User::X] + 1`).

use checkflow_expr::Compiled;
use checkflow_model::{TaskDef, pos_of};
use checkflow_plan::{Action, BuildCx, RunCx, TaskError, TaskType};
use std::sync::Arc;

pub(crate) struct ExpressionType;

impl TaskType for ExpressionType {
    fn name(&self) -> &'static str {
        "expression"
    }

    fn fields(&self) -> &'static [&'static str] {
        &["expr"]
    }

    fn build(&self, def: &TaskDef, cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        let Some(src) = &def.expr else {
            cx.missing("expr", "expression");
            return None;
        };
        let expr = cx.compile(&src.value, true, pos_of(src))?;
        Some(Arc::new(ExpressionAction { expr }))
    }
}

struct ExpressionAction {
    expr: Compiled,
}

impl Action for ExpressionAction {
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError> {
        cx.eval(&self.expr).map(|_| ())
    }

    fn inline(&self) -> bool {
        true
    }
}
