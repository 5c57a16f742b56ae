//! Values for log fields: numbers stay numbers (a JSON log's fields are JSON numbers), rounded
//! for people.

/// A duration in seconds, to the tenth.
pub(crate) fn seconds(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn seconds_are_rounded_to_the_tenth() {
        assert_eq!(super::seconds(std::time::Duration::from_millis(1_249)), 1.2);
        assert_eq!(super::seconds(std::time::Duration::from_millis(1_250)), 1.3);
    }
}
