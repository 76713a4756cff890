using System.CommandLine;
using WeakSeg.Evaluation;

namespace WeakSeg.Cli.Options;

/// <summary><c>--miou-over</c>: which classes are averaged into mIoU (<see cref="MeanIouRule"/>), for `eval`, `eval-merge` and `eval-cam`.</summary>
internal static class MeanIouOption
{
    public const string Union = "union", GroundTruth = "gt";

    public static Option<string> Create(MeanIouRule defaultRule, string description =
        "Classes averaged into mIoU: 'union' = classes in the ground truth or the prediction (nanmean, mmseg); 'gt' = classes in the ground truth (ToCo).")
    {
        var option = new Option<string>("--miou-over") { Description = description, DefaultValueFactory = _ => Name(defaultRule) };
        option.AcceptOnlyFromAmong(Union, GroundTruth);
        return option;
    }

    public static string Name(MeanIouRule rule) => rule == MeanIouRule.ClassesInGroundTruth ? GroundTruth : Union;

    public static MeanIouRule Read(ParseResult parse, Option<string> option) =>
        parse.GetValue(option) == GroundTruth ? MeanIouRule.ClassesInGroundTruth : MeanIouRule.ClassesWithUnion;
}
