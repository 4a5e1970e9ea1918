//! The components that hold rows (sort, aggregate, union all, merge join)
//! are DataFusion plans over the flow's channels: each input is a streaming
//! table whose one partition reads its channel, and DataFusion's own
//! operators (`SortExec`, `AggregateExec`, `UnionExec`, `HashJoinExec`) do
//! the work under a memory pool of `memory_limit`, spilling to disk beyond it.

use crate::runtime::{BATCH_ROWS, Emit, FlowError};
use crate::spec::{AggOp, Comp, JoinKind, Kind};
use crate::types::{Cols, arrow_type, schema_of};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::{JoinType, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::execution::TaskContext;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::functions_aggregate::expr_fn::{avg, count, count_distinct, max, min, sum};
use datafusion::logical_expr::{Expr, SortExpr, cast as cast_expr, ident, lit};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::Receiver;

/// A session whose operators share a memory pool of `memory` bytes and spill
/// to the system's temporary folder.
pub fn session(memory: usize) -> Result<SessionContext, String> {
    let rt = RuntimeEnvBuilder::new()
        .with_memory_limit(memory, 1.0)
        .build_arc()
        .map_err(|e| e.to_string())?;
    let cfg = SessionConfig::new()
        .with_batch_size(BATCH_ROWS)
        .with_target_partitions(2);
    Ok(SessionContext::new_with_config_rt(cfg, rt))
}

/// One input of a plan: the channel's batches, read once.
struct ChannelPartition {
    schema: SchemaRef,
    rx: Mutex<Option<Receiver<RecordBatch>>>,
}

impl std::fmt::Debug for ChannelPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelPartition")
    }
}

impl PartitionStream for ChannelPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let rx = self.rx.lock().ok().and_then(|mut r| r.take());
        let stream = futures::stream::unfold(rx, |rx| async move {
            let mut rx = rx?;
            let b = rx.recv().await?;
            Some((Ok(b), Some(rx)))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

fn table(
    ctx: &SessionContext,
    rx: Receiver<RecordBatch>,
    cols: &Cols,
) -> datafusion::error::Result<DataFrame> {
    let schema = schema_of(cols);
    let part = Arc::new(ChannelPartition {
        schema: schema.clone(),
        rx: Mutex::new(Some(rx)),
    });
    let t = StreamingTable::try_new(schema, vec![part])?;
    ctx.read_table(Arc::new(t))
}

fn sort_exprs(by: &[(String, bool)]) -> Vec<SortExpr> {
    // NULL sorts as the smallest value, as SSIS's Sort does.
    by.iter()
        .map(|(c, desc)| ident(c).sort(!desc, !desc))
        .collect()
}

/// The plan of a row-holding component over its inputs.
fn plan(
    c: &Comp,
    ctx: &SessionContext,
    inputs: Vec<(Receiver<RecordBatch>, Cols)>,
) -> datafusion::error::Result<DataFrame> {
    let out_cols = &c.outputs[0].cols;
    let mut dfs = Vec::new();
    let mut in_cols = Vec::new();
    for (rx, cols) in inputs {
        dfs.push(table(ctx, rx, &cols)?);
        in_cols.push(cols);
    }
    let mut dfs = dfs.into_iter();
    let first = dfs
        .next()
        .ok_or_else(|| datafusion::error::DataFusionError::Plan("no input".into()))?;
    match &c.kind {
        Kind::Sort { by, distinct } => {
            if *distinct {
                let on: Vec<Expr> = by.iter().map(|(c, _)| ident(c)).collect();
                let all: Vec<Expr> = in_cols[0].iter().map(|c| ident(&c.name)).collect();
                first
                    .distinct_on(on, all, Some(sort_exprs(by)))?
                    .sort(sort_exprs(by))
            } else {
                first.sort(sort_exprs(by))
            }
        }
        Kind::Aggregate { group_by, columns } => {
            let groups: Vec<Expr> = group_by.iter().map(ident).collect();
            let aggs: Vec<Expr> = columns
                .iter()
                .map(|a| {
                    let of = a.of.as_deref().map(ident);
                    let e = match (a.op, of) {
                        (AggOp::Count, None) => count(lit(1)),
                        (AggOp::Count, Some(x)) => count(x),
                        (AggOp::CountDistinct, Some(x)) => count_distinct(x),
                        (AggOp::Sum, Some(x)) => sum(x),
                        (AggOp::Avg, Some(x)) => avg(x),
                        (AggOp::Min, Some(x)) => min(x),
                        (AggOp::Max, Some(x)) => max(x),
                        (_, None) => count(lit(1)),
                    };
                    e.alias(&a.name)
                })
                .collect();
            first.aggregate(groups, aggs)
        }
        Kind::UnionAll => {
            let align = |df: DataFrame, have: &Cols| -> datafusion::error::Result<DataFrame> {
                let sel: Vec<Expr> = out_cols
                    .iter()
                    .map(|c| {
                        let t = arrow_type(&c.ty)
                            .unwrap_or(datafusion::arrow::datatypes::DataType::Utf8);
                        let e = if have.iter().any(|h| h.name == c.name) {
                            cast_expr(ident(&c.name), t)
                        } else {
                            lit(ScalarValue::try_from(&t).unwrap_or(ScalarValue::Null))
                        };
                        e.alias(&c.name)
                    })
                    .collect();
                df.select(sel)
            };
            let mut acc = align(first, &in_cols[0])?;
            for (df, have) in dfs.zip(in_cols.iter().skip(1)) {
                acc = acc.union(align(df, have)?)?;
            }
            Ok(acc)
        }
        Kind::MergeJoin {
            kind,
            on,
            right_keep,
        } => {
            let right = dfs
                .next()
                .ok_or_else(|| datafusion::error::DataFusionError::Plan("no right input".into()))?;
            let rname = |n: &str| format!("\u{1}right\u{1}{n}");
            let right = right.select(
                in_cols[1]
                    .iter()
                    .map(|c| ident(&c.name).alias(rname(&c.name)))
                    .collect::<Vec<_>>(),
            )?;
            let jt = match kind {
                JoinKind::Inner => JoinType::Inner,
                JoinKind::Left => JoinType::Left,
                JoinKind::Full => JoinType::Full,
            };
            let cond: Vec<Expr> = on
                .iter()
                .map(|(l, r)| ident(l).eq(ident(rname(r))))
                .collect();
            let joined = first.join_on(right, jt, cond)?;
            let mut sel: Vec<Expr> = in_cols[0].iter().map(|c| ident(&c.name)).collect();
            sel.extend(right_keep.iter().map(|n| ident(rname(n)).alias(n)));
            joined.select(sel)
        }
        _ => Err(datafusion::error::DataFusionError::Plan(format!(
            "{} is not a plan component",
            c.type_name
        ))),
    }
}

/// Runs a row-holding component: plans it, then sends its output batches,
/// cast to the types validation worked out.
pub async fn run(
    c: &Comp,
    ctx: SessionContext,
    inputs: Vec<(Receiver<RecordBatch>, Cols)>,
    emit: &Emit,
) -> Result<(), FlowError> {
    let schema = schema_of(&c.outputs[0].cols);
    let df = plan(c, &ctx, inputs).map_err(|e| FlowError::of(&c.name, e))?;
    let mut stream = df
        .execute_stream()
        .await
        .map_err(|e| FlowError::of(&c.name, e))?;
    while let Some(b) = stream.next().await {
        let b = b.map_err(|e| FlowError::of(&c.name, e))?;
        let b = conform(&c.name, &schema, b)?;
        emit.send_async(0, b).await?;
    }
    Ok(())
}

/// A batch with `schema`'s names and types (columns by position).
pub fn conform(comp: &str, schema: &SchemaRef, b: RecordBatch) -> Result<RecordBatch, FlowError> {
    let mut arrays = Vec::with_capacity(b.num_columns());
    for (a, f) in b.columns().iter().zip(schema.fields()) {
        arrays.push(if a.data_type() == f.data_type() {
            a.clone()
        } else {
            cast(a, f.data_type())
                .map_err(|e| FlowError::of(comp, format!("column \"{}\": {e}", f.name())))?
        });
    }
    RecordBatch::try_new(schema.clone(), arrays).map_err(|e| FlowError::of(comp, e))
}
