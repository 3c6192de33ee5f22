//! `harness plan --output github-matrix --shards N`: the plan as a GitHub Actions job matrix
//! (`{"include":[...]}` for `strategy.matrix: ${{ fromJSON(...) }}`), one entry per shard that
//! holds cells. Each entry carries what its job needs: the `--partition` to pass to
//! `harness e2e`, the cell ids (for the job's name and the reader), and the kernel modules its
//! profiles need on the runner (`sudo modprobe` before the run: nodes share the host's kernel).

use crate::partition::Partition;
use crate::plan::Plan;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// For `harness e2e --partition`.
    pub partition: String,
    /// Short, for the job name: `2/4`.
    pub shard: String,
    pub cells: Vec<String>,
    /// Space-separated, sorted, for `sudo modprobe -a`; empty when the shard needs none.
    pub kernel_modules: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub include: Vec<Entry>,
}

/// Split `plan` into `count` hash shards and describe the ones that hold cells.
pub fn matrix(plan: &Plan, count: u32) -> Matrix {
    let include = (1..=count)
        .filter_map(|shard| {
            let part = Partition { shard, count };
            let cells: Vec<_> = plan.cells.iter().filter(|c| part.contains(&c.id)).collect();
            if cells.is_empty() {
                return None;
            }
            let modules: BTreeSet<&str> = cells
                .iter()
                .flat_map(|c| &c.host_requirements)
                .map(|r| r.kernel_module)
                .collect();
            Some(Entry {
                partition: part.to_string(),
                shard: format!("{shard}/{count}"),
                cells: cells.iter().map(|c| c.id.clone()).collect(),
                kernel_modules: modules.into_iter().collect::<Vec<_>>().join(" "),
            })
        })
        .collect();
    Matrix { include }
}

/// The JSON on one line, as `$GITHUB_OUTPUT` wants it (`matrix=<json>`).
pub fn to_json(m: &Matrix) -> String {
    serde_json::to_string(m).expect("the matrix is plain data")
}
