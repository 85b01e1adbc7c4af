//! Money in the stores: integer nano-dollars for costs (the unit a record's cost is
//! rounded to, so conversion is exact), pico-dollars for the per-bucket shares of a cost.

use rust_decimal::{Decimal, RoundingStrategy};

const NANOS: u32 = 9;
const PICOS: u32 = 12;

fn to_units(amount: Decimal, scale: u32) -> i64 {
    let saturated = if amount.is_sign_negative() {
        i64::MIN
    } else {
        i64::MAX
    };
    // Fast path (every record cost, most bucket shares): no rounding needed, only a
    // power-of-ten multiplication of the mantissa.
    if amount.scale() <= scale {
        let factor = 10i128.pow(scale - amount.scale());
        return amount
            .mantissa()
            .checked_mul(factor)
            .and_then(|units| i64::try_from(units).ok())
            .unwrap_or(saturated);
    }
    let mut rounded = amount.round_dp_with_strategy(scale, RoundingStrategy::MidpointNearestEven);
    rounded.rescale(scale);
    i64::try_from(rounded.mantissa()).unwrap_or(saturated)
}

fn from_units(units: i64, scale: u32) -> Decimal {
    Decimal::new(units, scale).normalize()
}

/// USD → nano-dollars, rounding half to even (exact for any record cost).
pub fn to_nanos(amount: Decimal) -> i64 {
    to_units(amount, NANOS)
}

pub fn from_nanos(nanos: i64) -> Decimal {
    from_units(nanos, NANOS)
}

/// USD → pico-dollars, rounding half to even.
pub fn to_picos(amount: Decimal) -> i64 {
    to_units(amount, PICOS)
}

pub fn from_picos(picos: i64) -> Decimal {
    from_units(picos, PICOS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip_exactly() {
        for text in ["0", "0.0455", "0.000000001", "1234567.123456789", "0.1925"] {
            let amount: Decimal = text.parse().unwrap();
            assert_eq!(from_nanos(to_nanos(amount)), amount.normalize(), "{text}");
            assert_eq!(from_picos(to_picos(amount)), amount.normalize(), "{text}");
        }
        // Half to even at the last unit.
        assert_eq!(to_nanos("0.0000000025".parse().unwrap()), 2);
        assert_eq!(to_nanos("0.0000000035".parse().unwrap()), 4);
        assert_eq!(to_picos("0.0000000000015".parse().unwrap()), 2);
    }
}
