# Carbon at admission: estimated energy = GPUs x board power x duration (declared in the
# guard.cnai.dev/expected-duration-hours annotation or activeDeadlineSeconds, else the cluster
# default), emissions = energy x grid intensity; denied when above the tenant's remaining budget,
# warned above 80% of it. An unknown GPU product counts at the largest board power known.
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

estimate := sprintf("%d GPUs x %.0f W x %.1f h = %.1f kWh x %.0f g/kWh = %.1f kg CO2e", [
	input.workload.gpu.total, board_w, hours, energy_kwh, input.cluster.gridIntensityGPerKWh, co2e_kg,
])

deny contains v if {
	input.workload.gpu.total > 0
	input.tenant.carbon != null
	co2e_kg > remaining_kg
	v := {
		"rule": "carbon_budget_exceeded",
		"severity": "medium",
		"controls": controls,
		"message": sprintf("%s %q: estimated %s; tenant %q has %.1f kg CO2e left of its budget", [
			input.workload.kind, input.workload.name, estimate, input.tenant.name, remaining_kg,
		]),
	}
}

warn contains v if {
	input.workload.gpu.total > 0
	input.tenant.carbon != null
	co2e_kg <= remaining_kg
	co2e_kg > 0.8 * remaining_kg
	v := {
		"rule": "carbon_budget_low",
		"severity": "low",
		"controls": controls,
		"message": sprintf("%s %q: estimated %s uses over 80%% of tenant %q's remaining %.1f kg CO2e", [
			input.workload.kind, input.workload.name, estimate, input.tenant.name, remaining_kg,
		]),
	}
}
