using WeakSeg.Methods;
using WeakSeg.Pipelines;

namespace WeakSeg.Tests.Architecture;

/// <summary>The floor plan of ARCHITECTURE.md holds for the library (<see cref="FolderRules"/>; the CLI's part is in the CLI tests,
/// <c>tests/WeakSeg.Cli.Tests/Architecture/CliFolderRulesTests.cs</c>).</summary>
public class FolderRulesTests
{
    static readonly IReadOnlyList<FolderEdge> LibraryEdges = FolderRules.Scan(typeof(WeakSegException).Assembly);

    [Fact]
    public void The_library_keeps_the_floor_plan()
    {
        var problems = FolderRules.Violations(LibraryEdges);
        Assert.True(problems.Count == 0, "folder rule violations:\n" + string.Join("\n", problems));
    }

    /// <summary>The scan sees the edges it must see (so an empty violation list is not an empty scan).</summary>
    [Fact]
    public void The_scan_finds_known_edges()
    {
        void Has(string from, string to, string via) =>
            Assert.True(LibraryEdges.Any(e => e.From == from && e.To == to && e.Via.StartsWith(via, StringComparison.Ordinal)), $"no edge {from} → {to} via {via}");
        Has("WeakSeg.Methods.WeakTr", "WeakSeg.Methods", "WeakSeg.Methods.WeakTr.WeakTrMethod base type");                 // the door
        Has("WeakSeg.Methods.MctFormer", "WeakSeg.Methods.Localization", "WeakSeg.Methods.MctFormer.MctFormerLoss body of Compute"); // shared ops, in a body
        Has("WeakSeg.Methods", "WeakSeg.Methods.WeakTr", FolderRules.Catalog);                                               // the catalog (a lambda)
        Has("WeakSeg.Pipelines", "WeakSeg.Methods", typeof(TrainRecipe).FullName!);                                          // recipe → contract
        Has("WeakSeg.Data", "WeakSeg.IO", "WeakSeg.Data");
        Assert.True(LibraryEdges.Count > 100, $"{LibraryEdges.Count} edges");
        // Outside Methods, nothing in the library names a method's folder.
        Assert.DoesNotContain(LibraryEdges, e => FolderRules.RoomOf(e.From) != "Methods" && e.To.StartsWith("WeakSeg.Methods.", StringComparison.Ordinal)
                                                 && !e.To.EndsWith(".Localization", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("WeakSeg.Methods.WeakTr", "WeakSeg.Methods.MctFormer", "WeakSeg.Methods.WeakTr.WeakTrMethod field x", "method folder WeakTr may not use method folder MctFormer")]
    [InlineData("WeakSeg.Models.Vit", "WeakSeg.Methods", "WeakSeg.Models.Vit.VisionTransformer field x", "Models may not use Methods")]
    [InlineData("WeakSeg.Data", "WeakSeg.Models", "WeakSeg.Data.VocDataset field x", "Data may not use Models")]
    [InlineData("WeakSeg.Training", "WeakSeg.Cli.Commands", "WeakSeg.Training.Trainer field x", "Training may not use WeakSeg.Cli")]
    [InlineData("WeakSeg.Pipelines", "WeakSeg.Methods.WeakTr", "WeakSeg.Pipelines.WsssPipeline method Run", "only the method's own folder and WeakSeg.Methods.BuiltInMethods may name method folder WeakTr")]
    [InlineData("WeakSeg.Methods", "WeakSeg.Methods.MctFormer", "WeakSeg.Methods.MethodRegistry field x", "only the method's own folder")]
    [InlineData("WeakSeg.Methods.Localization", "WeakSeg.Methods.WeakTr", "WeakSeg.Methods.Localization.ClassMaps method x", "only the method's own folder")]
    [InlineData("WeakSeg.Cli.Commands", "WeakSeg.Methods.MctFormer", "WeakSeg.Cli.Commands.TrainCommand method x", "only the method's own folder")]
    [InlineData("WeakSeg.Gadgets", "WeakSeg.IO", "WeakSeg.Gadgets.Thing field x", "folder Gadgets is not in the floor plan")]
    public void A_synthetic_violation_is_reported(string from, string to, string via, string expected)
    {
        var problems = FolderRules.Violations([new FolderEdge(from, to, via)]);
        Assert.Contains(problems, p => p.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("WeakSeg.Methods.Fsr", "WeakSeg.Methods.ToCo", "WeakSeg.Methods.Fsr.FsrMethod base type")]                    // FSR builds on ToCo
    [InlineData("WeakSeg.Methods.MoRe", "WeakSeg.Methods.ToCo", "WeakSeg.Methods.MoRe.MoReModel field x")]
    [InlineData("WeakSeg.Methods.WeakTr", "WeakSeg.Methods.Localization", "WeakSeg.Methods.WeakTr.WeakTrLoss method x")]
    [InlineData("WeakSeg.Methods", "WeakSeg.Methods.ToCo", "WeakSeg.Methods.BuiltInMethods+<>c method x")]                    // the catalog
    [InlineData("WeakSeg.Pipelines", "WeakSeg.Methods", "WeakSeg.Pipelines.TrainRecipe field x")]
    [InlineData("WeakSeg.Evaluation", "WeakSeg.PseudoLabels", "WeakSeg.Evaluation.CamThresholdSweep method x")]             // the known circle
    public void An_allowed_edge_is_not_reported(string from, string to, string via) =>
        Assert.Empty(FolderRules.Violations([new FolderEdge(from, to, via)]));

    [Fact]
    public void Every_room_of_the_library_is_in_the_floor_plan()
    {
        var rooms = typeof(WeakSegException).Assembly.GetTypes().Select(t => t.Namespace).OfType<string>()
            .Where(n => n.StartsWith(FolderRules.Root, StringComparison.Ordinal)).Select(FolderRules.RoomOf).Distinct();
        Assert.All(rooms, r => Assert.Contains(r, FolderRules.MayUse.Keys));
        Assert.Contains(BuiltInMethods.WeakTr, MethodRegistry.Names);
    }
}
