using System.CommandLine;
using Spectre.Console;
using WeakSeg.Data.Coco;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg coco-masks --annotations instances_train2014.json --out DIR [--images DIR] [--split S]`.</summary>
public static class CocoMasksCommand
{
    public static Command Create()
    {
        var annotations = new Option<string>("--annotations") { Description = "COCO instances JSON (e.g. instances_train2014.json).", Required = true };
        var output = new Option<string>("--out") { Description = "Output dataset root (VOC-style layout readable by train/info).", Required = true };
        var images = new Option<string?>("--images") { Description = "Folder with the split's JPEGs (e.g. train2014/): checked, and linked as OUT/JPEGImages." };
        var split = new Option<string?>("--split") { Description = "Split list name (default: train/val from the annotation file name)." };
        var cmd = new Command("coco-masks", "Build class-index PNG masks (0 = background, 1..80, 255 = crowd), list files, classes.txt and labels.txt from COCO instance annotations.");
        cmd.Options.Add(annotations);
        cmd.Options.Add(output);
        cmd.Options.Add(images);
        cmd.Options.Add(split);
        cmd.SetAction(parseResult =>
        {
            var ann = parseResult.GetValue(annotations)!;
            var summary = CliProgress.Run("coco-masks", p =>
                CocoMaskBuilder.Build(ann, parseResult.GetValue(output)!, parseResult.GetValue(images), parseResult.GetValue(split), p));
            AnsiConsole.MarkupLine($"split [bold]{Markup.Escape(summary.Split)}[/]: {summary.MasksWritten} masks written " +
                $"({summary.Images} images, {summary.SkippedWithoutLabels} without annotations left out; {summary.Annotations} annotations, {summary.CrowdAnnotations} crowd)");
            AnsiConsole.MarkupLine($"list: {Markup.Escape(summary.ListFile)}");
            if (summary.MissingImages.Count > 0)
            {
                Console.Error.WriteLine($"{summary.MissingImages.Count} listed image(s) are missing from --images:");
                foreach (var m in summary.MissingImages.Take(20)) Console.Error.WriteLine("  " + m);
                if (summary.MissingImages.Count > 20) Console.Error.WriteLine($"  … and {summary.MissingImages.Count - 20} more");
                return 1;
            }
            return 0;
        });
        return cmd;
    }
}
