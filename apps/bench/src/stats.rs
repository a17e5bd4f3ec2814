//! Order statistics over measured durations.

use std::time::Duration;

pub struct Summary {
    sorted: Vec<Duration>,
}

impl Summary {
    pub fn of(samples: &[Duration]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort();
        Self { sorted }
    }

    /// The sample at quantile `q` (nearest rank); zero for no samples.
    fn quantile(&self, q: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * self.sorted.len() as f64).ceil() as usize).clamp(1, self.sorted.len());
        self.sorted[rank - 1]
    }

    pub fn median_ms(&self) -> f64 {
        ms(self.quantile(0.5))
    }

    pub fn p99_ms(&self) -> f64 {
        ms(self.quantile(0.99))
    }

    pub fn print_row(&self, name: &str) {
        println!(
            "{name:<28} {:>8} {:>8.3}ms {:>8.3}ms {:>8.3}ms",
            self.sorted.len(),
            self.median_ms(),
            self.p99_ms(),
            ms(self.quantile(1.0))
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let summary = Summary::of(&samples);
        assert_eq!(summary.median_ms(), 50.0);
        assert_eq!(summary.p99_ms(), 99.0);
        assert_eq!(Summary::of(&[]).median_ms(), 0.0);
    }
}
