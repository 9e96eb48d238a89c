//! Summary statistics of timings, shared by every bench (`facectl bench`,
//! `cargo xtask bench`/`bench-lambda`, `dlib-model`'s `load_time`) so
//! their figures are computed alike.

/// The median: the middle value of an odd count, the mean of the two
/// middle values of an even count, `None` for no values. Sorted by
/// [`f64::total_cmp`], so a NaN never panics (it sorts last).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        None
    } else if n.is_multiple_of(2) {
        Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0)
    } else {
        Some(sorted[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn odd_counts_take_the_middle_value() {
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[5.0, -1.0, 100.0, 2.0, 3.0]), Some(3.0));
    }

    #[test]
    fn even_counts_take_the_mean_of_the_two_middle_values() {
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[10.0, 20.0]), Some(15.0));
        // Not the upper middle value, which two benches used to take.
        assert_ne!(median(&[1.0, 2.0, 3.0, 100.0]), Some(3.0));
    }

    #[test]
    fn no_values_have_no_median() {
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn the_input_is_left_in_its_order() {
        let values = [3.0, 1.0, 2.0];
        assert_eq!(median(&values), Some(2.0));
        assert_eq!(values, [3.0, 1.0, 2.0]);
    }
}
