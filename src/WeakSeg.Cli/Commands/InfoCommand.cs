using System.CommandLine;
using Spectre.Console;
using WeakSeg.Data;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg info --data DIR [--split S]`: images per split, class frequencies, and every missing or corrupt file.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "Dataset root (VOC 2012 layout or the layout written by coco-masks).", Required = true };
        var split = new Option<string?>("--split") { Description = "Split to inspect (a list in ImageSets/Segmentation); default: all splits." };
        var cmd = new Command("info", "Check a dataset: decodes every image and mask, prints class frequencies and lists every problem (exit code 1 if any).");
        cmd.Options.Add(data);
        cmd.Options.Add(split);
        cmd.SetAction(parseResult =>
        {
            var root = parseResult.GetValue(data)!;
            var requested = parseResult.GetValue(split);
            var splits = requested != null ? [requested] : VocDataset.AvailableSplits(root);
            if (splits.Count == 0) throw WeakSegException.ForFile(new VocLayout(root).SplitsDir, "no split lists (*.txt) found");
            var classNames = ClassNames.ForRoot(new VocLayout(root).Root);
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(new VocLayout(root).Root)}[/]: {classNames.NumClasses} classes{(File.Exists(Path.Combine(root, "classes.txt")) ? " (classes.txt)" : " (VOC default)")}");

            var splitTable = new Table().AddColumns("split", "images", "with masks", "problems", "labels from");
            var problemsAll = new List<DatasetProblem>();
            var reports = new List<DatasetReport>();
            foreach (var s in splits)
            {
                var dataset = VocDataset.OpenLenient(root, s, out var openProblems, progress: null);
                var report = CliProgress.Run($"checking {s}", p => dataset.Validate(p));
                var problems = openProblems.Concat(report.Problems).ToList();
                problemsAll.AddRange(problems);
                reports.Add(report);
                splitTable.AddRow(Markup.Escape(s), dataset.Layout.ReadSplit(s).Count.ToString(), report.ImagesWithMasks.ToString(),
                    problems.Count == 0 ? "[green]0[/]" : $"[red]{problems.Count}[/]", dataset.HasLabelsFile ? "labels.txt" : "masks");
            }
            AnsiConsole.Write(splitTable);

            foreach (var report in reports)
            {
                var table = new Table { Title = new TableTitle($"class frequencies — {Markup.Escape(report.Split)}") }
                    .AddColumns("#", "class", "images", "image %", "pixel %");
                for (int c = 0; c < report.ClassNames.Count; c++)
                {
                    string images = c == 0 ? "" : report.ImagesPerClass[c].ToString();
                    string imageShare = c == 0 || report.Images == 0 ? "" : $"{100.0 * report.ImagesPerClass[c] / report.Images:F1}";
                    string pixelShare = report.ImagesWithMasks == 0 ? "" : $"{100 * report.PixelShare(c):F2}";
                    table.AddRow(c.ToString(), Markup.Escape(report.ClassNames[c]), images, imageShare, pixelShare);
                }
                AnsiConsole.Write(table);
                if (report.ImagesWithMasks > 0)
                    AnsiConsole.MarkupLine($"{Markup.Escape(report.Split)}: pixel % over labelled mask pixels; ignore (255) pixels: {report.IgnorePixels} " +
                        $"({100.0 * report.IgnorePixels / Math.Max(1, report.PixelsPerClass.Sum() + report.IgnorePixels):F2} % of all mask pixels)");
            }

            if (problemsAll.Count == 0)
            {
                AnsiConsole.MarkupLine("[green]no problems found[/]");
                return 0;
            }
            Console.Error.WriteLine($"{problemsAll.Count} problem(s):");
            foreach (var p in problemsAll) Console.Error.WriteLine("  " + p);
            return 1;
        });
        return cmd;
    }
}
