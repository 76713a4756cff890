using WeakSeg.Data;

namespace WeakSeg.Tests.Evaluation;

/// <summary>Tiny VOC-layout datasets in a temp dir (the CLI tests add a runner that captures stdout/stderr).</summary>
internal static partial class EvalTestData
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
}
