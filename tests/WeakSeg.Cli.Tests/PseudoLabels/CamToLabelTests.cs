using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.PseudoLabels;
using WeakSeg.Tests.Evaluation;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.PseudoLabels;

public class CamToLabelTests
{
    // m = [0.2, 0.6, 0.3, 0.5], argmax class = [1, 1, 1, 2] (classes 3 and 7 here)
    static readonly CamMaps Maps = new("a", [0.2f, 0.6f, 0.3f, 0.1f, 0.1f, 0.2f, 0.1f, 0.5f], [3, 7], 2, 2);

    [Fact]
    public void Threshold_and_uncertain_band_give_the_hand_computed_labels()
    {
        Assert.Equal([3, 3, 3, 7], CamToLabel.Convert(Maps, 0.1f).Labels);
        Assert.Equal([0, 3, 3, 7], CamToLabel.Convert(Maps, 0.2f).Labels);   // tie m = t → background
        Assert.Equal([0, 3, 0, 0], CamToLabel.Convert(Maps, 0.5f).Labels);
        // band [0.25, 0.55): 0.3 and 0.5 uncertain; 0.2 below → background; 0.6 above and > t → class
        Assert.Equal([0, 3, 255, 255], CamToLabel.Convert(Maps, 0.25f, new UncertainBand(0.25f, 0.55f)).Labels);
        Assert.Equal([0, 3, 255, 7], CamToLabel.Convert(Maps, 0.25f, new UncertainBand(0.25f, 0.5f)).Labels); // High is exclusive
        var label = CamToLabel.Convert(Maps, 0.2f);
        Assert.Equal((2, 2), (label.Width, label.Height));
    }

    [Fact]
    public void No_class_planes_is_all_background_and_class_ties_go_to_the_first_plane()
    {
        Assert.Equal([0, 0, 0], CamToLabel.Convert(new CamMaps("e", [], [], 1, 3), 0f, new UncertainBand(0f, 1f)).Labels);
        var tie = new CamMaps("t", [0.7f, 0.7f], [5, 2], 1, 1);
        Assert.Equal([5], CamToLabel.Convert(tie, 0.5f).Labels);
    }

    [Fact]
    public void Uncertain_band_parsing_validates()
    {
        Assert.Equal(new UncertainBand(0.25f, 0.7f), UncertainBand.Parse("0.25:0.7"));
        Assert.Contains("LOW:HIGH", Assert.Throws<WeakSegException>(() => UncertainBand.Parse("0.25")).Message);
        Assert.Contains("0 ≤ LOW < HIGH ≤ 1", Assert.Throws<WeakSegException>(() => UncertainBand.Parse("0.7:0.2")).Message);
    }

    [Fact]
    public void Pseudo_command_writes_palette_pngs_skips_existing_and_overwrites_on_request()
    {
        using var tmp = TestPaths.NewTempDir();
        var cams = tmp.File("cams"); var outDir = tmp.File("labels");
        CamMapFile.Write(cams, "a", Maps.Maps, Maps.Classes, 2, 2);
        CamMapFile.Write(cams, "b", [0.9f, 0.05f], [20], 1, 2);

        var (exit, stdout, stderr) = EvalTestData.RunCli("pseudo", "--cams", cams, "--out", outDir, "--threshold", "0.25", "--uncertain", "0.25:0.55");
        Assert.True(exit == 0, stderr);
        Assert.Contains("wrote 2 labels", stdout);
        Assert.Equal([0, 3, 255, 255], LabelPng.Read(Path.Combine(outDir, "a.png")).Labels);
        Assert.Equal([20, 0], LabelPng.Read(Path.Combine(outDir, "b.png")).Labels);
        Assert.Equal(3, File.ReadAllBytes(Path.Combine(outDir, "a.png"))[25]); // IHDR colour type 3 = palette

        var summary = PseudoLabelWriter.Run(cams, outDir, new PseudoLabelConfig { Threshold = 0.25f, Uncertain = new UncertainBand(0.25f, 0.55f) });
        Assert.Equal((0, 2), (summary.Written, summary.Skipped));                        // same settings: resumes, skipping both
        // Other settings are refused (the existing labels are not theirs), naming the folder's settings record.
        var stale = Assert.Throws<WeakSegException>(() => PseudoLabelWriter.Run(cams, outDir, new PseudoLabelConfig { Threshold = 0.5f }));
        Assert.Contains("other settings (threshold, uncertain)", stale.Message);
        Assert.Equal([0, 3, 255, 255], LabelPng.Read(Path.Combine(outDir, "a.png")).Labels); // untouched

        summary = PseudoLabelWriter.Run(cams, outDir, new PseudoLabelConfig { Threshold = 0.5f, Overwrite = true });
        Assert.Equal((2, 0), (summary.Written, summary.Skipped));
        Assert.Equal([0, 3, 0, 0], LabelPng.Read(Path.Combine(outDir, "a.png")).Labels);
        Assert.Equal(0, summary.IgnorePixels); Assert.Equal(6, summary.TotalPixels);
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp"));
    }

    [Fact]
    public void Pseudo_command_reports_bad_maps_by_file()
    {
        using var tmp = TestPaths.NewTempDir();
        var cams = tmp.File("cams");
        CamMapFile.Write(cams, "a", Maps.Maps, Maps.Classes, 2, 2);
        File.Delete(CamMapFile.ClassesPath(cams, "a"));
        var (exit, _, stderr) = EvalTestData.RunCli("pseudo", "--cams", cams, "--out", tmp.File("o"));
        Assert.Equal(1, exit);
        Assert.Contains(CamMapFile.ClassesPath(cams, "a") + ": class list not found", stderr);
    }
}
