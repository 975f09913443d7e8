# Vivado out-of-context synthesis of one qcascade design, after Vitis HLS csynth.
#
# Copied next to a generated design.tcl and qcascade_ooc.xdc by qcascade; run in that folder:
#     vivado -mode batch -source vivado_ooc_synth.tcl
# Writes vivado_synth.rpt (report_utilization: the layout hls4ml's report reader parses),
# vivado_timing_summary.rpt, vivado_timing.rpt and vivado_power.rpt (report_power: vectorless, default
# toggle rates; qcascade reads its Total On-Chip Power for the energy per window) next to this script.

set qc_dir [file dirname [file normalize [info script]]]
source [file join $qc_dir design.tcl]
cd $qc_dir

set qc_rtl [file join ${qc_top}_prj solution1 syn verilog]
if {![file isdirectory $qc_rtl]} {
    puts "ERROR: $qc_dir/$qc_rtl not found: run Vitis HLS csynth first"
    exit 1
}
add_files $qc_rtl
read_xdc [file join $qc_dir qcascade_ooc.xdc]
synth_design -top $qc_top -part $qc_part -mode out_of_context
opt_design -retarget -propconst -sweep -bram_power_opt -shift_register_opt
report_utilization -file vivado_synth.rpt
report_timing_summary -file vivado_timing_summary.rpt
report_timing -max_paths 10 -file vivado_timing.rpt
report_power -file vivado_power.rpt
exit
