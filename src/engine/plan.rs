//! How a stream of unknown length is cut into upload parts.
//!
//! S3 takes at most 10,000 parts per object, every part but the last at
//! least 5 MiB and at most 5 GiB, and objects up to 5 TiB. Fixed small parts
//! cap an object at 10,000 x part size (the Go plugin's answer was 500 MiB
//! parts and 3 GB of buffers per process); fixed large parts waste memory on
//! the many small tables of a multi-file backup. So parts start at the
//! configured size and double every [`PARTS_PER_STEP`] parts: an 8 MiB start
//! keeps 8 MiB parts for the first 7 GiB, and 10,000 parts reach well past
//! 5 TiB from any start of at least 5 MiB.

use crate::config::MAX_PART_SIZE;

/// S3's limit on parts per multipart upload.
pub const MAX_PARTS: u32 = 10_000;
/// Parts of one size before the size doubles; 900 (not 1,000) so that even a
/// 5 MiB start reaches 5 TiB within 10,000 parts.
pub const PARTS_PER_STEP: u32 = 900;

/// Lets the tests reach part-size steps with megabytes instead of gigabytes.
const STEP_OVERRIDE_VAR: &str = "GPBACKUP_S3_PLUGIN_TEST_PARTS_PER_STEP";

#[derive(Debug, Clone, Copy)]
pub struct PartPlan {
    first: u64,
    step: u32,
}

impl PartPlan {
    pub fn new(first_part_size: u64) -> PartPlan {
        let step = std::env::var(STEP_OVERRIDE_VAR)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(PARTS_PER_STEP);
        PartPlan { first: first_part_size.min(MAX_PART_SIZE), step: step.min(u32::MAX - 1) }
    }

    /// Every part the same size (Glacier's rule).
    pub fn fixed(part_size: u64) -> PartPlan {
        PartPlan { first: part_size, step: u32::MAX }
    }

    pub fn is_fixed(&self) -> bool {
        self.step == u32::MAX
    }

    /// Size of part `number` (1-based).
    pub fn size(&self, number: u32) -> u64 {
        let doublings = (number.saturating_sub(1) / self.step).min(20);
        self.first.saturating_mul(1 << doublings).min(MAX_PART_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MIN_PART_SIZE;
    use crate::size::{GIB, MIB};

    fn reach(plan: PartPlan) -> u64 {
        (1..=MAX_PARTS).map(|n| plan.size(n)).sum()
    }

    #[test]
    fn reaches_five_tib_from_the_smallest_start() {
        assert!(reach(PartPlan::new(MIN_PART_SIZE)) >= 5 * 1024 * GIB);
        assert!(reach(PartPlan::new(8 * MIB)) >= 5 * 1024 * GIB);
    }

    #[test]
    fn sizes_grow_and_stay_within_limits() {
        for first in [MIN_PART_SIZE, 8 * MIB, 100 * MIB, MAX_PART_SIZE] {
            let plan = PartPlan::new(first);
            let mut last = 0;
            for n in 1..=MAX_PARTS {
                let s = plan.size(n);
                assert!(s >= last && (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&s));
                last = s;
            }
        }
    }

    #[test]
    fn fixed_plans_never_grow() {
        let plan = PartPlan::fixed(16 * MIB);
        assert!(plan.is_fixed() && !PartPlan::new(16 * MIB).is_fixed());
        assert!((1..=MAX_PARTS).all(|n| plan.size(n) == 16 * MIB));
    }

    #[test]
    fn small_streams_use_small_parts() {
        let plan = PartPlan::new(8 * MIB);
        assert_eq!(plan.size(1), 8 * MIB);
        assert_eq!(plan.size(900), 8 * MIB);
        assert_eq!(plan.size(901), 16 * MIB);
        assert_eq!(plan.size(1801), 32 * MIB);
    }
}
