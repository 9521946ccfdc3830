package guard.lib.fmt_test

import data.guard.lib.fmt

test_decimal_of_an_integer_has_its_decimals if {
	fmt.decimal(700, 1) == "700.0"
	fmt.decimal(700.0, 1) == "700.0"
	fmt.decimal(475, 0) == "475"
	fmt.decimal(0, 2) == "0.00"
}

test_decimal_rounds_half_away_from_zero if {
	fmt.decimal(131.449, 1) == "131.4"
	fmt.decimal(0.25, 1) == "0.3"
	fmt.decimal(2.5, 0) == "3"
	fmt.decimal(-2.5, 0) == "-3"
	fmt.decimal(-0.25, 1) == "-0.3"
	fmt.decimal(0.05, 1) == "0.1"
	fmt.decimal(0.004, 2) == "0.00"
}

test_decimal_rounds_decimal_ties_up_whatever_the_float if {
	fmt.decimal(1.005, 2) == "1.01"
	fmt.decimal(2.675, 2) == "2.68"
	fmt.decimal(0.15, 1) == "0.2"
	fmt.decimal(0.125, 2) == "0.13"
	fmt.int(0.1 * 25) == "3"
	fmt.decimal(1853e30, 1) == "1.853e+33"
	fmt.decimal(18535e29, 1) == "1.854e+33"
}

test_decimal_computes_11_significant_digits_at_most if {
	fmt.decimal(9007199254741.375, 3) == "9007199254741.000"
	fmt.number(9007199254741.375) == "9007199254741"
	fmt.decimal(123456789.123, 3) == "123456789.120"
	fmt.number(123456789.126) == "123456789.13"
	fmt.decimal(99999999999.96, 1) == "100000000000.0"
	fmt.decimal(17592186044416.22, 3) == "17592186044416.000"
	fmt.number(17592186044416.22) == "17592186044416"
	fmt.decimal(123456789012.5, 2) == "123456789013.00"
	fmt.decimal(9.9999, 3) == "10.000"
	fmt.decimal(-9.9999, 0) == "-10"
}

test_decimal_pads_small_values if {
	fmt.decimal(0.5, 3) == "0.500"
	fmt.decimal(0.007, 3) == "0.007"
	fmt.decimal(-0.007, 2) == "-0.01"
}

test_no_negative_zero if {
	fmt.decimal(-0.04, 1) == "0.0"
	fmt.int(-0.4) == "0"
	fmt.number(-0.0001) == "0"
}

test_large_and_small_numbers_are_written_out if {
	fmt.decimal(1e6, 1) == "1000000.0"
	fmt.int(1e21) == "1.000e+21"
	fmt.number(1e40) == "1.000e+40"
	fmt.number(9.9994e15) == "9.999e+15"
	fmt.number(9.9996e15) == "1.000e+16"
	fmt.number(99999999999999992) == "1.000e+17"
	fmt.decimal(1e300, 1) == "1.000e+300"
	fmt.number(1e300) == "1.000e+300"
	fmt.number(-1e300 * 1e300) == "-over 1e+308"
	fmt.number(-1234567890123456.5) == "-1.235e+15"
	fmt.int(999999999999999) == "999999999999999"
	fmt.decimal(-1853799697961663844654615017134489.6, 1) == "-1.854e+33"
	fmt.number(1e15) == "1.000e+15"
	fmt.number(70553706496) == "70553706496"
	fmt.number(123456789.5) == "123456789.5"
	fmt.number(1.5e-07) == "0"
	fmt.number(1e6) == "1000000"
}

test_int if {
	fmt.int(700.0) == "700"
	fmt.int(2.5) == "3"
	fmt.int(-2.5) == "-3"
	fmt.int(-7) == "-7"
}

test_number_is_as_short_as_exact if {
	fmt.number(2) == "2"
	fmt.number(2.0) == "2"
	fmt.number(0.5) == "0.5"
	fmt.number(1.0625) == "1.063"
	fmt.number(-1.5) == "-1.5"
	fmt.number(100.0001) == "100"
}

test_non_numbers_are_written_with_v if {
	fmt.decimal("x", 1) == "x"
	fmt.int(null) == "null"
	fmt.number(true) == "true"
	fmt.decimal(1, 9) == "1"
}

test_value if {
	fmt.value(2.0) == "2"
	fmt.value("a b") == "a b"
	fmt.value(null) == "null"
	fmt.value(set()) == "[]"
	fmt.value({"b", "a"}) == `["a", "b"]`
	fmt.value(["a"]) == `["a"]`
	fmt.value([]) == "[]"
	fmt.value({}) == "{}"
	fmt.value(false) == "false"
}

test_value_writes_arrays_and_objects_like_v if {
	fmt.value(["a", 2.0, null, true, 0.25]) == `["a", 2, null, true, 0.25]`
	fmt.value({"b": 300.0, "a": "x"}) == `{"a": "x", "b": 300}`
	fmt.value([{"b": 1.5e-07, "a": "c"}]) == `[{"a": "c", "b": 0}]`
	fmt.value({"b": {"c"}, "a": [1.5]}) == `{"a": [1.5], "b": ["c"]}`
	fmt.value({"k": ["v", 1e6]}) == `{"k": ["v", 1000000]}`
	fmt.value([["a"], set()]) == `[["a"], []]`
}

test_value_quotes_strings_as_q_does if {
	fmt.value(["a\u2028b\u0001\"c"]) == `["a\u2028b\x01\"c"]`
	fmt.value({"k\u00a0": "\u007f"}) == `{"k\u00a0": "\x7f"}`
}
