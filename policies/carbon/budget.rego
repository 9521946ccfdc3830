# Carbon at admission: estimated energy = GPUs x board power x duration (declared in the
# guard.cnai.dev/expected-duration-hours annotation or activeDeadlineSeconds, else the cluster
# default), emissions = energy x grid intensity; denied when above the tenant's remaining budget,
# warned above 80% of it. An unknown GPU product counts at the largest board power known.
# The used figure is the measured one `guard energy --publish-usage` published (usedSource
# "measured") when the webhook reads a usage file, else the config's used_kg_co2e; a published
# usage older than energy.usage_max_age_seconds, or missing, is warned (carbon_usage_stale).
package guard.carbon.budget

controls := ["NIST-AI-RMF MEASURE-2.12", "EU-AI-Act Annex XI 1(2)(e)", "ISO-42001 A.5.5"]

hours := input.workload.durationHours if input.workload.durationHours != null
else := input.cluster.defaultJobDurationHours

# The GPU products the pod is confined to ([] when it is not confined: see input.schema.json).
products := p if {
	p := input.workload.placement.gpuProducts
	is_array(p)
} else := []

board_w := max([input.cluster.gpuProducts[p].boardPowerW | some p in products]) if {
	count(products) > 0
	every p in products {
		input.cluster.gpuProducts[p]
	}
} else := max([p.boardPowerW | some p in input.cluster.gpuProducts]) # the largest known

energy_kwh := ((input.workload.gpu.total * board_w) * hours) / 1000

# energy_kwh written out (same operations in the same order): reading that rule costs more than
# the arithmetic with regorus.
co2e_kg := ((((input.workload.gpu.total * board_w) * hours) / 1000) * input.cluster.gridIntensityGPerKWh) / 1000

remaining_kg := input.tenant.carbon.budgetKgCO2e - input.tenant.carbon.usedKgCO2e

# Comparisons allow a micro-kilogram: regorus computes in binary floats and OPA in exact decimals,
# so 0.3 - 0.1 against 0.2 would be over budget under one engine and at the budget under the other.
tolerance_kg := 0.000001

# Which used figure the budget was checked against (the config's when no usage file is read).
used_said := sprintf("measured %s kg CO2e as of %s", [data.guard.lib.fmt.decimal(input.tenant.carbon.usedKgCO2e, 1), input.tenant.carbon.usageAsOf]) if {
	input.tenant.carbon.usedSource == "measured"
} else := sprintf("%s kg CO2e from the config (used_kg_co2e)", [data.guard.lib.fmt.decimal(input.tenant.carbon.usedKgCO2e, 1)])

estimate := sprintf("%s GPUs x %s W x %s h = %s kWh x %s g/kWh = %s kg CO2e", [
	data.guard.lib.fmt.number(input.workload.gpu.total), data.guard.lib.fmt.decimal(board_w, 0),
	data.guard.lib.fmt.decimal(hours, 1), data.guard.lib.fmt.decimal(energy_kwh, 1),
	data.guard.lib.fmt.decimal(input.cluster.gridIntensityGPerKWh, 0), data.guard.lib.fmt.decimal(co2e_kg, 1),
])

deny contains v if {
	input.workload.gpu.total > 0
	input.tenant.carbon != null
	co2e_kg > remaining_kg + tolerance_kg
	v := {
		"rule": "carbon_budget_exceeded",
		"severity": "medium",
		"controls": controls,
		"message": sprintf("%s %q: estimated %s; tenant %q has %s kg CO2e left of its budget (used: %s)", [
			input.workload.kind, input.workload.name, estimate, input.tenant.name, data.guard.lib.fmt.decimal(remaining_kg, 1), used_said,
		]),
	}
}

warn contains v if {
	input.workload.gpu.total > 0
	input.tenant.carbon != null
	co2e_kg <= remaining_kg + tolerance_kg
	co2e_kg > 0.8 * remaining_kg
	v := {
		"rule": "carbon_budget_low",
		"severity": "low",
		"controls": controls,
		"message": sprintf("%s %q: estimated %s uses over 80%% of tenant %q's remaining %s kg CO2e", [
			input.workload.kind, input.workload.name, estimate, input.tenant.name, data.guard.lib.fmt.decimal(remaining_kg, 1),
		]),
	}
}

stale_why := sprintf("%s", [data.guard.lib.fmt.value(input.tenant.carbon.usageProblem)]) if {
	input.tenant.carbon.usageProblem != null
} else := sprintf("the published usage is %s s old", [data.guard.lib.fmt.decimal(input.tenant.carbon.usageAgeSeconds, 0)])

warn contains v if {
	input.workload.gpu.total > 0
	input.tenant.carbon.usageStale == true
	v := {
		"rule": "carbon_usage_stale",
		"severity": "low",
		"controls": controls,
		"message": sprintf("%s %q: tenant %q's carbon budget was checked against %s: %s", [
			input.workload.kind, input.workload.name, input.tenant.name, used_said, stale_why,
		]),
	}
}
