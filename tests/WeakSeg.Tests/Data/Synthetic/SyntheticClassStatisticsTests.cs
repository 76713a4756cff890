using WeakSeg.Data.Synthetic;

namespace WeakSeg.Tests.Data.Synthetic;

/// <summary>The classes differ measurably in texture, while colour alone does not identify them.</summary>
public class SyntheticClassStatisticsTests(Xunit.Abstractions.ITestOutputHelper output)
{
    static readonly SyntheticDatasetConfig Config = new() { ImageSize = 64, NumClasses = 12, Seed = 5 };
    const int Images = 120;

    sealed record Measurements(double[] Energy, List<(int Class, double Hue)> ObjectHues, int PlanMismatches);

    static readonly Lazy<Measurements> Measured = new(Measure);

    /// <summary>Mean |∂L/∂x| + |∂L/∂y| of luminance over interior class pixels (both forward neighbours the same class), per class.</summary>
    static Measurements Measure()
    {
        int k = Config.NumClasses, n = Config.ImageSize;
        var energy = new double[k + 1];
        var count = new long[k + 1];
        var hues = new List<(int, double)>();
        int mismatches = 0;
        for (int i = 0; i < Images; i++)
        {
            var img = SyntheticImageGenerator.Generate(Config, SyntheticSplit.Train, i);
            if (!SyntheticImageGenerator.Plan(Config, SyntheticSplit.Train, i).Classes.SequenceEqual(img.Classes)) mismatches++;
            var lab = img.Mask.Labels;
            var px = img.Image.Pixels;
            double L(int x, int y) { int o = (y * n + x) * 3; return 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2]; }
            for (int y = 0; y < n - 1; y++)
                for (int x = 0; x < n - 1; x++)
                {
                    int c = lab[y * n + x];
                    if (c == 0 || c == 255 || lab[y * n + x + 1] != c || lab[(y + 1) * n + x] != c) continue;
                    energy[c] += Math.Abs(L(x + 1, y) - L(x, y)) + Math.Abs(L(x, y + 1) - L(x, y));
                    count[c]++;
                }
            foreach (var o in img.Objects) hues.Add((o.ClassIndex, o.Texture.Primary.Hue()));
        }
        for (int c = 1; c <= k; c++) energy[c] = count[c] == 0 ? double.NaN : energy[c] / count[c];
        return new Measurements(energy, hues, mismatches);
    }

    [Fact]
    public void Every_planned_class_survives_occlusion_and_the_ignore_band()
    {
        // Layouts are resampled until every object keeps ≥ 50 % of its area and enough non-border pixels, so the
        // image-level labels (from the mask) equal the planned classes.
        Assert.Equal(0, Measured.Value.PlanMismatches);
    }

    [Fact]
    public void Patterned_classes_have_far_more_texture_energy_than_flat_classes()
    {
        var e = Measured.Value.Energy;
        int[] flat = [1, 4, 7];                  // disc (shaded), star (speckled), crescent (gradient)
        int[] patterned = [3, 5, 8, 9, 10, 11];  // stripes, checker, dots, grid, concentric, zigzag
        foreach (var c in flat.Concat(patterned)) Assert.False(double.IsNaN(e[c]), $"class {c} never rendered");
        double maxFlat = flat.Max(c => e[c]), minPatterned = patterned.Min(c => e[c]);
        // Measured at seed 5: flat 4.6–10.5 grey levels per pixel step, patterned 22–50.
        Assert.True(minPatterned > 1.8 * maxFlat, $"patterned min {minPatterned:F1} vs flat max {maxFlat:F1}");
        // Within the patterned group the textures still differ: the densest (zigzag) has ≥ 1.5× the energy of checker.
        Assert.True(e[11] > 1.5 * e[5], $"zigzag {e[11]:F1} vs checker {e[5]:F1}");
    }

    [Fact]
    public void Colour_alone_does_not_identify_the_class()
    {
        var hues = Measured.Value.ObjectHues;
        Assert.True(hues.Count > 150);
        // Nearest class hue centre (circular distance) as a colour-only classifier.
        int correct = 0, insideAnotherRange = 0;
        foreach (var (c, h) in hues)
        {
            int best = 1; double bestD = double.MaxValue;
            bool other = false;
            for (int j = 1; j <= Config.NumClasses; j++)
            {
                double d = HueDistance(h, SyntheticClassCatalog.All[j - 1].HueCentre);
                if (d < bestD) { bestD = d; best = j; }
                if (j != c && d <= SyntheticClassCatalog.HueSpread) other = true;
            }
            if (best == c) correct++;
            if (other) insideAnotherRange++;
            // every primary lies within its own class range (±40°), even the near-grey ones
            Assert.True(HueDistance(h, SyntheticClassCatalog.All[c - 1].HueCentre) <= SyntheticClassCatalog.HueSpread + 1e-6);
        }
        double accuracy = (double)correct / hues.Count, shared = (double)insideAnotherRange / hues.Count;
        output.WriteLine($"hue-only accuracy {accuracy:P1}, hue shared with another class {shared:P1}, energies {string.Join(' ', Measured.Value.Energy.Skip(1).Select(v => v.ToString("F1")))}");
        Assert.InRange(accuracy, 0.15, 0.6);   // better than chance (1/12) but far from identifying the class
        Assert.True(shared > 0.8, $"only {shared:P0} of objects have a hue inside another class's range");
    }

    static double HueDistance(double a, double b)
    {
        double d = Math.Abs(a - b) % 360;
        return d > 180 ? 360 - d : d;
    }
}
