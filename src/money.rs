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

/// Writes `amount` exactly as `Decimal`'s `Display` does (every digit of its scale), with
/// integer formatting instead of the formatter machinery: `cost` writes two per line.
pub fn write_decimal(out: &mut Vec<u8>, amount: Decimal) {
    let mantissa = amount.mantissa();
    if mantissa < 0 {
        out.push(b'-');
    }
    let digits = mantissa.unsigned_abs();
    let scale = amount.scale();
    let unit = 10u128.pow(scale);
    let mut buffer = itoa::Buffer::new();
    out.extend_from_slice(buffer.format(digits / unit).as_bytes());
    if scale > 0 {
        out.push(b'.');
        let fraction = buffer.format(digits % unit);
        out.extend(std::iter::repeat_n(b'0', scale as usize - fraction.len()));
        out.extend_from_slice(fraction.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        let mut cases: Vec<Decimal> = [
            "0",
            "1",
            "-1",
            "0.043925",
            "0.04392500",
            "1.50",
            "-0.000000001",
            "12345678901234.567890123",
            "79228162514264337593543950335",
            "-7.9228162514264337593543950335",
            "0.0000000000000000000000000001",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        // A spread of mantissas and scales.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mantissa = i64::from_le_bytes(state.to_le_bytes()) as i128 * 97;
            cases.push(Decimal::from_i128_with_scale(mantissa, (state % 29) as u32));
        }
        for amount in cases {
            let mut out = Vec::new();
            write_decimal(&mut out, amount);
            assert_eq!(String::from_utf8(out).unwrap(), amount.to_string());
        }
    }

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
