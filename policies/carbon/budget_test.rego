package guard.carbon.budget_test

import data.guard.carbon.budget
import data.guard.lib.fixtures

job(gpus, hours) := fixtures.patched([
	{"op": "replace", "path": "/workload/gpu/total", "value": gpus},
	{"op": "replace", "path": "/workload/durationHours", "value": hours},
])

test_allowed_small_job if {
	count(budget.deny) == 0 with input as fixtures.base
	count(budget.warn) == 0 with input as fixtures.base
}

test_estimate_uses_board_power_and_grid_intensity if {
	# 8 x 700 W x 10 h = 56 kWh; x 475 g/kWh = 26.6 kg
	budget.energy_kwh == 56 with input as job(8, 10)
	budget.co2e_kg == 26.6 with input as job(8, 10)
}

test_default_duration if {
	budget.hours == 24 with input as fixtures.base
}

test_denied_over_remaining_budget if {
	# 8 x 700 W x 2000 h = 11200 kWh = 5320 kg > 4000 kg left
	violations := budget.deny with input as job(8, 2000)
	fixtures.rules(violations) == {"carbon_budget_exceeded"}
	some v in violations
	contains(v.message, "4000")
}

test_warned_near_budget if {
	# 8 x 0.7 kW x 1400 h = 7840 kWh = 3724 kg: over 80% of 4000
	doc := job(8, 1400)
	count(budget.deny) == 0 with input as doc
	fixtures.rules(budget.warn) == {"carbon_budget_low"} with input as doc
}

test_unknown_product_counts_at_largest_power if {
	doc := json.patch(job(1, 10), [{"op": "replace", "path": "/workload/placement/gpuProducts", "value": null}])
	budget.board_w == 700 with input as doc
}

test_allowed_tenant_without_budget if {
	doc := json.patch(job(8, 2000), [{"op": "replace", "path": "/tenant/carbon", "value": null}])
	count(budget.deny) == 0 with input as doc
}

test_controls_cite_environmental_impact if {
	# ISO/IEC 42001 A.5.5 (societal impacts, environmental sustainability); A.5.4 is impact on individuals
	"ISO-42001 A.5.5" in budget.controls
	not "ISO-42001 A.5.4" in budget.controls
}

measured(used, stale, problem) := json.patch(job(8, 10), [{"op": "replace", "path": "/tenant/carbon", "value": {
	"budgetKgCO2e": 5000, "usedKgCO2e": used, "usedSource": "measured", "usageAsOf": "2026-11-30T12:00:00+00:00",
	"usageAgeSeconds": 7300, "usageStale": stale, "usageProblem": problem,
}}])

test_denied_on_the_measured_figure if {
	# 26.6 kg estimated; measured 4990 of 5000 used
	violations := budget.deny with input as measured(4990, false, null)
	fixtures.rules(violations) == {"carbon_budget_exceeded"}
	some v in violations
	contains(v.message, "(used: measured 4990")
	contains(v.message, "kg CO2e as of 2026-11-30T12:00:00+00:00)")
}

test_warned_when_the_published_usage_is_stale if {
	fixtures.rules(budget.warn) == {"carbon_usage_stale"} with input as measured(10, true, null)
	some v in budget.warn with input as measured(10, true, null)
	contains(v.message, "7300 s old")
	count(budget.warn) == 0 with input as measured(10, false, null)
}

test_warned_when_the_usage_file_is_unusable if {
	doc := json.patch(measured(10, true, "usage file /u.json: not UTF-8 JSON"), [
		{"op": "replace", "path": "/tenant/carbon/usedSource", "value": "config"},
	])
	some v in budget.warn with input as doc
	v.rule == "carbon_usage_stale"
	contains(v.message, "from the config (used_kg_co2e): usage file /u.json: not UTF-8 JSON")
}
