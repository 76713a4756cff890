using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Spectre.Console;
using WeakSeg.Cli.Options;
using WeakSeg.Cli.Output;
using WeakSeg.Evaluation;
using WeakSeg.IO;
using WeakSeg.Pipelines;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg inspect-affinity`: where a trained ViT's patch-to-patch attention (the affinity that refines MCTformer-type maps)
/// puts its mass, against the ground-truth masks (<see cref="PatchAffinityInspection"/>; reads pixel labels).</summary>
public static class InspectAffinityCommand
{
    public static Command Create()
    {
        var defaults = new PatchAffinityRequest { RunDirectory = "" };
        var run = new Option<string>("--run") { Description = "Run directory of a class-token method (`weakseg train`, or a pipeline's cam/run).", Required = true };
        var data = new Option<string?>("--data") { Description = "Dataset root in VOC layout with masks (default: the run's training data)." };
        var split = new Option<string>("--split") { Description = "Split whose images are measured.", DefaultValueFactory = _ => defaults.Split };
        var images = new Option<int>("--images") { Description = "Measure the split's first N images (0 = all).", DefaultValueFactory = _ => defaults.Images };
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON to this file." };
        var runtime = new RuntimeOptions(RuntimePart.Device | RuntimePart.Threads);
        var cmd = new Command("inspect-affinity",
            "Diagnostic (reads the masks): how a trained ViT's patch-to-patch attention, summed over layers as MCTformer's refinement uses it, " +
            "spreads over same-class patches, background and neighbours, each against a uniform row.");
        foreach (var o in new Option[] { run, data, split, images, json }.Concat(runtime.All)) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var request = new PatchAffinityRequest
            {
                RunDirectory = parseResult.GetValue(run)!,
                DataRoot = parseResult.GetValue(data),
                Split = parseResult.GetValue(split)!,
                Images = parseResult.GetValue(images),
                Device = runtime.DeviceValue(parseResult),
                Threads = runtime.ThreadsValue(parseResult),
            };
            var s = CliProgress.Run("attention", p => PatchAffinityInspection.Run(request, p));
            var inv = CultureInfo.InvariantCulture;
            string F(double v) => double.IsNaN(v) ? "-" : v.ToString("0.000", inv);
            var table = new Table().Title(Markup.Escape($"patch-to-patch attention of {request.RunDirectory} ({s.Images} images, {s.Patches} labelled patches; reads masks)"));
            table.AddColumn("row mass (normalised over patches)");
            table.AddColumn(new TableColumn("measured").RightAligned());
            table.AddColumn(new TableColumn("uniform row").RightAligned());
            table.AddRow("foreground patch → its own class", F(s.ForegroundSameClass), F(s.ForegroundSameClassChance));
            table.AddRow("background patch → background", F(s.BackgroundSameClass), F(s.BackgroundSameClassChance));
            table.AddRow("3×3 neighbourhood", F(s.NeighbourhoodMass), F(s.NeighbourhoodChance));
            table.AddRow("itself", F(s.SelfMass), F(s.SelfChance));
            table.AddRow("effective support exp(H)/N", F(s.EffectiveSupport), F(1));
            CliConsole.Stdout().Write(table);
            Console.WriteLine($"share of the attention on patch tokens (the rest on class tokens): {F(s.PatchShare)}");
            if (parseResult.GetValue(json) is { } path)
            {
                JsonNode? V(double v) => double.IsNaN(v) ? null : JsonValue.Create(v);
                var node = new JsonObject
                {
                    ["run"] = Path.GetFullPath(request.RunDirectory), ["split"] = request.Split, ["images"] = s.Images, ["patches"] = s.Patches,
                    ["reads_masks"] = true,
                    ["patch_share"] = V(s.PatchShare), ["self_mass"] = V(s.SelfMass), ["self_chance"] = V(s.SelfChance), ["effective_support"] = V(s.EffectiveSupport),
                    ["foreground_same_class"] = V(s.ForegroundSameClass), ["foreground_same_class_chance"] = V(s.ForegroundSameClassChance),
                    ["background_same_class"] = V(s.BackgroundSameClass), ["background_same_class_chance"] = V(s.BackgroundSameClassChance),
                    ["neighbourhood_mass"] = V(s.NeighbourhoodMass), ["neighbourhood_chance"] = V(s.NeighbourhoodChance),
                };
                AtomicFile.Commit(Path.GetFullPath(path), file => File.WriteAllText(file, WeakSegJson.Text(node)));
                Console.WriteLine($"wrote {path}");
            }
            return 0;
        });
        return cmd;
    }
}
