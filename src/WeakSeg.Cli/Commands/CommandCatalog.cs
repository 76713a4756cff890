using System.CommandLine;

namespace WeakSeg.Cli.Commands;

/// <summary>Every verb of the `weakseg` command, one class per verb in this folder.</summary>
public static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return VersionCommand.Create();
        yield return EvalCommand.Create();
        yield return EvalMergeCommand.Create();
        yield return EvalCamCommand.Create();
        yield return PseudoCommand.Create();
        yield return SynthCommand.Create();
        yield return InfoCommand.Create();
        yield return CocoMasksCommand.Create();
        yield return BenchCommand.Create();
        yield return SegTrainCommand.Create();
        yield return SegInferCommand.Create();
        yield return CrfCommand.Create();
        yield return AffinityCommand.Create();
        yield return TrainCommand.Create();
        yield return CamCommand.Create();
        yield return InspectAffinityCommand.Create();
        yield return DemoCommand.Create();
        yield return PipelineCommand.Create();
        yield return CompareCommand.Create();
        yield return ReportCommand.Create();
        yield return WeightsCommand.Create();
    }
}
