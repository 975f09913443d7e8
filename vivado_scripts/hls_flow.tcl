# Vitis HLS flow for one qcascade design (a submodel or the cascade top level).
#
# Copied next to a generated design.tcl by qcascade; run it in that folder:
#     QCASCADE_HLS_STEPS="csim csynth cosim export" vitis-run --mode hls --tcl hls_flow.tcl
#     (Vitis HLS before 2023.2: vitis_hls -f hls_flow.tcl)
# QCASCADE_HLS_STEPS picks the steps (default: all four). Results land where hls4ml's report
# readers look: <top>_prj/solution1/{csim,syn,sim,impl}/...

set qc_dir [file dirname [file normalize [info script]]]
source [file join $qc_dir design.tcl]
cd $qc_dir

set qc_all_steps {csim csynth cosim export}
set qc_steps $qc_all_steps
if {[info exists ::env(QCASCADE_HLS_STEPS)]} {
    set qc_steps $::env(QCASCADE_HLS_STEPS)
}
foreach qc_step $qc_steps {
    if {[lsearch -exact $qc_all_steps $qc_step] < 0} {
        puts "ERROR: unknown step '$qc_step' in QCASCADE_HLS_STEPS (known: $qc_all_steps)"
        exit 2
    }
}
proc qc_has {step} {
    global qc_steps
    return [expr {[lsearch -exact $qc_steps $step] >= 0}]
}

# A new synthesis starts from a clean project; csim/cosim/export alone reuse the previous one.
if {[qc_has csynth]} {
    open_project -reset ${qc_top}_prj
} else {
    open_project ${qc_top}_prj
}
set_top $qc_top
foreach qc_f $qc_sources {
    add_files [file join $qc_dir $qc_f] -cflags $qc_cflags
}
foreach qc_f $qc_tb_sources {
    add_files -tb [file join $qc_dir $qc_f] -cflags $qc_cflags
}
foreach qc_f $qc_tb_files {
    add_files -tb [file join $qc_dir $qc_f]
}
if {[qc_has csynth]} {
    open_solution -reset -flow_target vivado solution1
} else {
    open_solution -flow_target vivado solution1
}
set_part $qc_part
create_clock -period $qc_clock_period -name default
set_clock_uncertainty $qc_clock_uncertainty default
config_compile -name_max_length 80
catch {config_array_partition -maximum_size 4096}

if {[qc_has csim]} {
    puts "***** C SIMULATION ($qc_top) *****"
    csim_design
}
if {[qc_has csynth]} {
    puts "***** C SYNTHESIS ($qc_top) *****"
    csynth_design
}
if {[qc_has cosim]} {
    puts "***** C/RTL CO-SIMULATION ($qc_top) *****"
    # Like hls4ml: the testbench writes rtl_cosim_results instead of csim_results under RTL_SIM.
    foreach qc_f $qc_tb_sources {
        add_files -tb [file join $qc_dir $qc_f] -cflags "$qc_cflags -DRTL_SIM"
    }
    cosim_design -rtl verilog
    # cascade_tb already exits 1 (cosim FAIL) when a result differs from tb_data/cascade_expected.txt,
    # the g++ C simulation's results; compare the files once more so the log says which line.
    set qc_expected [file join $qc_dir tb_data cascade_expected.txt]
    set qc_rtl_out [glob -nocomplain [file join ${qc_top}_prj solution1 sim wrapc tb_data rtl_cosim_results.txt]]
    if {[file exists $qc_expected] && $qc_rtl_out ne ""} {
        set qc_fa [open $qc_expected r]
        set qc_fb [open [lindex $qc_rtl_out 0] r]
        set qc_la [split [string trim [read $qc_fa]] "\n"]
        set qc_lb [split [string trim [read $qc_fb]] "\n"]
        close $qc_fa
        close $qc_fb
        if {$qc_la ne $qc_lb} {
            puts "ERROR: C/RTL co-simulation results differ from the C simulation ($qc_expected)"
            exit 1
        }
        puts "INFO: C/RTL co-simulation results equal the C simulation ([llength $qc_la] windows)"
    } elseif {[file exists $qc_expected]} {
        puts "WARNING: rtl_cosim_results.txt not found under ${qc_top}_prj/solution1/sim/wrapc; relying on cascade_tb's exit status"
    }
}
if {[qc_has export]} {
    puts "***** EXPORT IP ($qc_top) *****"
    export_design -format ip_catalog -version $qc_version
}
exit
