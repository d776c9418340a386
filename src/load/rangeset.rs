//! A set of sequence numbers stored as sorted ranges: in-order deliveries extend the last
//! range in O(1), so a receiver's whole history of one publisher costs a few words.

/// Sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<(u64, u64)>,
    len: u64,
}

impl RangeSet {
    /// An empty set.
    pub fn new() -> RangeSet {
        RangeSet::default()
    }

    /// Numbers in the set.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The largest number, if any.
    pub fn max(&self) -> Option<u64> {
        self.ranges.last().map(|r| r.1)
    }

    /// Whether `n` is in the set.
    pub fn contains(&self, n: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < n);
        self.ranges.get(i).is_some_and(|r| r.0 <= n)
    }

    /// Adds `n`; answers whether it was new.
    pub fn insert(&mut self, n: u64) -> bool {
        // Fast path: the next number in order.
        if let Some(last) = self.ranges.last_mut() {
            if last.1.checked_add(1) == Some(n) {
                last.1 = n;
                self.len += 1;
                return true;
            }
            if last.1 < n {
                self.ranges.push((n, n));
                self.len += 1;
                return true;
            }
        }
        let i = self.ranges.partition_point(|r| r.1 < n);
        if self.ranges.get(i).is_some_and(|r| r.0 <= n) {
            return false;
        }
        let joins_prev = i > 0 && self.ranges[i - 1].1 + 1 == n;
        let joins_next = self.ranges.get(i).is_some_and(|r| r.0 == n + 1);
        match (joins_prev, joins_next) {
            (true, true) => {
                self.ranges[i - 1].1 = self.ranges[i].1;
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i - 1].1 = n,
            (false, true) => self.ranges[i].0 = n,
            (false, false) => self.ranges.insert(i, (n, n)),
        }
        self.len += 1;
        true
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// A set from ranges as [`RangeSet::ranges`] gives them (from a shard report: the text
    /// came over the network, so anything but sorted, disjoint, non-adjacent inclusive
    /// ranges is refused).
    pub fn from_ranges(ranges: Vec<(u64, u64)>) -> Result<RangeSet, String> {
        let mut len: u64 = 0;
        for (i, &(lo, hi)) in ranges.iter().enumerate() {
            if lo > hi {
                return Err(format!("range {lo}-{hi} ends before it starts"));
            }
            if i > 0 && ranges[i - 1].1.saturating_add(1) >= lo {
                return Err(format!(
                    "range {lo}-{hi} overlaps or touches the one before it"
                ));
            }
            len = len
                .checked_add(hi - lo)
                .and_then(|n| n.checked_add(1))
                .ok_or("the ranges hold more than 2^64 numbers")?;
        }
        Ok(RangeSet { ranges, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_inserts_make_one_range() {
        let mut s = RangeSet::new();
        for n in 1..=100 {
            assert!(s.insert(n));
        }
        assert_eq!(s.ranges(), &[(1, 100)]);
        assert_eq!((s.len(), s.max()), (100, Some(100)));
        assert!(!s.insert(50));
        assert_eq!(s.len(), 100);
    }

    #[test]
    fn gaps_fill_and_merge() {
        let mut s = RangeSet::new();
        for n in [1, 2, 5, 9, 7] {
            assert!(s.insert(n));
        }
        assert_eq!(s.ranges(), &[(1, 2), (5, 5), (7, 7), (9, 9)]);
        assert!(s.insert(6));
        assert_eq!(s.ranges(), &[(1, 2), (5, 7), (9, 9)]);
        assert!(s.insert(8) && s.insert(3) && s.insert(4));
        assert_eq!(s.ranges(), &[(1, 9)]);
        assert!(s.contains(1) && s.contains(9) && !s.contains(0) && !s.contains(10));
        assert_eq!(s.len(), 9);
        assert!(s.insert(0));
        assert_eq!(s.ranges(), &[(0, 9)]);
    }

    #[test]
    fn from_ranges_round_trips_and_refuses_bad_ranges() {
        let mut s = RangeSet::new();
        for n in [1, 2, 3, 7, 9, 10] {
            s.insert(n);
        }
        assert_eq!(RangeSet::from_ranges(s.ranges().to_vec()), Ok(s));
        assert!(RangeSet::from_ranges(vec![(3, 2)]).is_err());
        assert!(RangeSet::from_ranges(vec![(1, 4), (4, 6)]).is_err());
        assert!(
            RangeSet::from_ranges(vec![(1, 4), (5, 6)]).is_err(),
            "adjacent"
        );
        assert!(
            RangeSet::from_ranges(vec![(5, 6), (1, 2)]).is_err(),
            "unsorted"
        );
        assert!(
            RangeSet::from_ranges(vec![(0, u64::MAX)]).is_err(),
            "too many"
        );
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut s = RangeSet::new();
        assert!(s.insert(u64::MAX));
        assert!(s.insert(u64::MAX - 1));
        assert!(!s.insert(u64::MAX));
        assert_eq!(s.ranges(), &[(u64::MAX - 1, u64::MAX)]);
    }
}
