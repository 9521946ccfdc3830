# Values in messages, written the same by both engines that run this library (regorus, embedded;
# OPA, the server engine). sprintf's number verbs differ between them:
#   - OPA's "%.1f", "%f", "%s" of an integral number (700, 700.0) render "%!f(int64=700)";
#     its "%d" of 3.5 renders "%!d(float64=3.5)", where regorus raises an evaluation error;
#   - regorus writes "%.1f" of 700 as "700" (no decimals) and rounds ties its own way
#     ("%.1f" of 0.25: regorus 0.3, OPA 0.2);
#   - OPA's "%v" writes floats in Go's %g (123456789.5 -> "1.234567895e+08", 1.5e-07) and keeps
#     the text of input numbers inside arrays and objects ("[2.0, 300]" where regorus has
#     "[2, 300]"); an empty set is "set()" in OPA and "{}" in regorus.
# round, abs, format_int and string built-ins agree on both, so numbers go through these helpers
# and a "%s" verb. Every helper is defined for every value (a non-number is written with "%v"):
# an undefined message would make its deny rule undefined, and the violation would be lost.
# tests/policy/test_message_format.py checks the helpers on both engines with generated values.
# What still differs: strings holding characters assigned after the Unicode version of one
# engine's tables (OPA's %q escapes U+323B0, CJK Extension J; regorus writes it).
package guard.lib.fmt

_scale := [1, 10, 100, 1000, 10000, 100000, 1000000]

_zeros := "000000"

# The engines compute differently in the last bits (regorus: 64-bit floats; OPA: exact decimals):
# 1.005 * 100 is 100.49999999999999 on regorus, 100.5 on OPA. So that a tie written in decimal
# (1.005 to 2 places) rounds the same way on both, a fraction is rounded after adding 10^-4 of the
# last place shown, and no more than 11 significant digits are computed (the float's error stays
# under 10^-5 of that place): 123456789.126 to 3 places is 123456789.130 (number(): 123456789.13).

# x rounded half away from zero to `places` decimals (0 to 6), written with exactly that many:
# decimal(700, 1) == "700.0", decimal(131.449, 1) == "131.4", decimal(-0.04, 1) == "0.0";
# from 10^15 on, in the form of _large. The whole part and the fraction are rounded apart.
decimal(x, places) := _large(x) if {
	is_number(x)
	abs(x) >= _limit
} else := s if {
	is_number(x)
	_scale[places]
	whole := floor(abs(x))
	shown := min([places, max([0, 11 - count(format_int(whole, 10))])])
	scale := _scale[shown]
	f := round(((abs(x) - whole) * scale) + 0.0001) # 0 .. scale
	carry := floor(f / scale) # 1 when the fraction rounds up to the next unit
	units := whole + carry
	fraction := f - (carry * scale)
	s := concat("", [_sign(x, units + fraction), format_int(units, 10), _fraction(fraction, shown, places)])
} else := sprintf("%v", [x])

_fraction(_, _, 0) := ""

_fraction(_, 0, places) := concat("", [".", substring(_zeros, 0, places)]) if places > 0

_fraction(f, shown, places) := concat("", [".", substring(_zeros, 0, shown - count(digits)), digits, substring(_zeros, 0, places - shown)]) if {
	shown > 0
	digits := format_int(f, 10)
}

# From 10^15 on, regorus (64-bit floats) and OPA (exact decimals) compute different low digits,
# and format_int of a float literal differs too (OPA writes 1e40 as 9999999999999999999783...):
# 4 significant digits, rounded, and the power of ten, found by comparison:
# _large(1853799697961663844654615017134489.6) == "1.854e+33". The value is nudged up by one part
# in 10^12 first: an input integer above 2^53 reaches regorus as the nearest float
# (99999999999999992 is 1e17 there), and a figure at a boundary must go the same way on both.
_limit := 1000000000000000

_large(x) := concat("", [_sign(x, 1), "over 1e+308"]) if abs(x) > _power(308) # regorus: infinity
else := concat("", [_sign(x, 1), substring(digits, 0, 1), ".", substring(digits, 1, 3), "e+", format_int(e, 10)]) if {
	a := abs(x) * 1.000000000001
	e := 15 + count([k | some k in numbers.range(16, 308); a >= _power(k) * 0.99995])
	digits := format_int(round((a / _power(e)) * 1000), 10)
}

_power(k) := to_number(concat("", ["1e", format_int(k, 10)]))

_sign(x, n) := "-" if {
	x < 0
	n > 0
} else := ""

# x rounded half away from zero to an integer: int(700.0) == "700", int(2.5) == "3".
int(x) := _large(x) if {
	is_number(x)
	abs(x) >= _limit
} else := concat("", [_sign(x, n), format_int(n, 10)]) if {
	is_number(x)
	whole := floor(abs(x))
	n := whole + round((abs(x) - whole) + 0.0001)
} else := sprintf("%v", [x])

# A number as short as it is exact to 3 decimals (11 significant digits at most):
# number(2) == "2", number(2.0) == "2", number(0.5) == "0.5", number(1.0625) == "1.063",
# number(8030261248) == "8030261248".
number(x) := int(x) if {
	is_number(x)
	abs(x) >= _limit
} else := int(x) if {
	is_number(x)
	x == round(x)
} else := trim_suffix(trim_right(decimal(x, 3), "0"), ".") if is_number(x)
else := sprintf("%v", [x])

# Any value as "%v" writes it, the same on both engines, for messages: a string as it is, numbers
# through number(), arrays, sets (sorted) and objects (by key) with their strings quoted by "%q"
# (the engines escape control and invisible characters the same way there, not in "%v"), two
# levels deep: value(["a", 2.0]) == `["a", 2]`, value(set()) == "[]", value({"b": {"c": 1}}) ==
# `{"b": {"c": 1}}`. Deeper values are written by "%v" (they differ in numbers and escapes).
value(x) := x if is_string(x)
else := sprintf("%v", [x]) if is_null(x)
else := sprintf("%v", [x]) if is_boolean(x)
else := number(x) if is_number(x)
else := concat("", ["[", concat(", ", [sprintf("%q", [e]) | some e in x]), "]"]) if {
	is_array(x)
	count([e | some e in x; is_string(e)]) == count(x)
} else := concat("", ["[", concat(", ", [sprintf("%q", [e]) | some e in sort(x)]), "]"]) if {
	is_set(x)
	count([e | some e in x; is_string(e)]) == count(x)
} else := _general(x)

# What value() writes, for every value; the branches above are its common cases (a scalar, a
# list of strings: most of the library's messages), written the same without a helper call per
# element (a user function call is what costs in regorus: ~2 us each). tests/policy/
# test_message_format.py checks both give the same on generated values.
_general(x) := _composite(x, _inner(x))

_inner(x) := [_flat(e) | some e in x] if is_array(x)
else := [_flat(e) | some e in sort(x)] if is_set(x)
else := [_entry(k, x[k], _flat(x[k])) | some k in sort(object.keys(x))] if is_object(x)
else := []

_flat(x) := _composite(x, [_scalar(e) | some e in x]) if is_array(x)
else := _composite(x, [_scalar(e) | some e in sort(x)]) if is_set(x)
else := _composite(x, [_entry(k, x[k], _scalar(x[k])) | some k in sort(object.keys(x))]) if is_object(x)
else := _scalar(x)

_composite(x, parts) := concat("", ["{", concat(", ", parts), "}"]) if is_object(x)
else := concat("", ["[", concat(", ", parts), "]"]) if is_array(x)
else := concat("", ["[", concat(", ", parts), "]"]) if is_set(x)
else := number(x) if is_number(x)
else := sprintf("%v", [x])

_entry(k, _, text) := concat("", [sprintf("%q", [k]), ": ", text]) if is_string(k)
else := concat("", [sprintf("%v", [k]), ": ", text])

_scalar(x) := number(x) if is_number(x)
else := sprintf("%q", [x]) if is_string(x)
else := sprintf("%v", [x])
