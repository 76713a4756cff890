using WeakSeg.Data;

namespace WeakSeg.Tests.Evaluation;

/// <summary>Tiny VOC-layout datasets in a temp dir, and a CLI runner that captures stdout/stderr.</summary>
internal static class EvalTestData
{
    /// <summary>Writes JPEGImages/NAME.jpg (grey), SegmentationClass/NAME.png and ImageSets/Segmentation/SPLIT.txt.</summary>
    public static void WriteDataset(string root, string split, params (string Name, LabelMap Mask)[] images)
    {
        var layout = Path.Combine(root, "ImageSets", "Segmentation");
        Directory.CreateDirectory(layout);
        foreach (var (name, mask) in images)
        {
            var rgb = new RgbImage(mask.Width, mask.Height);
            Array.Fill(rgb.Pixels, (byte)128);
            ImageCodec.Save(Path.Combine(root, "JPEGImages", name + ".jpg"), rgb);
            LabelPng.Write(Path.Combine(root, "SegmentationClass", name + ".png"), mask);
        }
        File.WriteAllLines(Path.Combine(layout, split + ".txt"), images.Select(i => i.Name));
    }

    public static LabelMap Mask(int width, int height, params byte[] labels) => new(width, height, labels);

    static readonly object ConsoleGate = new();

    /// <summary>Runs the command line in-process and captures its output (one run at a time: the console is process-wide).</summary>
    public static (int Exit, string Out, string Err) RunCli(params string[] args)
    {
        lock (ConsoleGate)
        {
            var oldOut = Console.Out; var oldErr = Console.Error;
            // Not disposed: Spectre's static AnsiConsole keeps the writer it first saw, and may write to it from a later test.
            var @out = new StringWriter(); var err = new StringWriter();
            Console.SetOut(@out); Console.SetError(err);
            try
            {
                int code = WeakSeg.Cli.Program.Run(args);
                return (code, @out.ToString(), err.ToString());
            }
            finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
        }
    }
}
