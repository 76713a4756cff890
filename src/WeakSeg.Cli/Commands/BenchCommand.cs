using System.CommandLine;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg bench`: speed and memory measurements (subcommands per workload).</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Speed and memory benchmarks of WeakSeg workloads on this machine.");
        cmd.Subcommands.Add(BenchTrainCommand.Create());
        return cmd;
    }
}
