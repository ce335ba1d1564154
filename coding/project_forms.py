"""Forms of the project pages: set-up, sampling, members, reassignment."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from .models import CodebookVersion, ForumSource, Project, Role, Tag, Thread
from .sampling import STRATIFY_CHOICES

ACCEPTED_CHOICES = [("", "Either"), ("yes", "Only with an accepted answer"), ("no", "Only without")]


class ProjectForm(forms.ModelForm):
    codebook_version = forms.ModelChoiceField(
        queryset=CodebookVersion.objects.select_related("codebook").order_by(
            "codebook__name", "-number"
        ),
        empty_label=None,
        help_text="The codebook version coders code against; it stays pinned.",
    )
    coders_per_unit = forms.IntegerField(
        min_value=1, max_value=10, initial=2, label="Coders per unit (K)"
    )
    overlap_percent = forms.IntegerField(
        min_value=0,
        max_value=100,
        initial=100,
        label="Overlap (%)",
        help_text="Share of units coded by K coders; the rest by one. Coders are not told.",
    )
    sources = forms.ModelMultipleChoiceField(
        queryset=ForumSource.objects.all(), required=False, help_text="None selected: all."
    )
    categories = forms.MultipleChoiceField(
        choices=(), required=False, help_text="None selected: all."
    )
    tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.all(),
        to_field_name="name",
        required=False,
        help_text="Threads with any of these tags; none selected: all.",
    )
    created_after = forms.DateField(
        required=False, label="Created on or after", widget=forms.DateInput(attrs={"type": "date"})
    )
    created_before = forms.DateField(
        required=False,
        label="Created on or before",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    accepted_answer = forms.ChoiceField(choices=ACCEPTED_CHOICES, required=False)

    class Meta:
        model = Project
        fields = [
            "name",
            "slug",
            "description",
            "codebook_version",
            "unit_type",
            "coding_mode",
            "open_autocomplete",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Older forms and scripts leave these out: the model's defaults apply then.
        self.fields["coding_mode"].required = False
        self.fields["open_autocomplete"].required = False
        categories = (
            Thread.objects.exclude(category="")
            .order_by("category")
            .values_list("category", flat=True)
            .distinct()
        )
        self.fields["categories"].choices = [(c, c) for c in categories]

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if slug == "new":
            raise forms.ValidationError("“new” is taken by the new-project page; choose another.")
        return slug

    def clean(self) -> dict:
        data = super().clean()
        after, before = data.get("created_after"), data.get("created_before")
        if after and before and after > before:
            self.add_error("created_before", "The end of the window is before its start.")
        return data

    def selection(self) -> dict:
        """The corpus selection from the fields that are valid (all of them after saving)."""
        data = self.cleaned_data
        selection: dict = {}
        if data.get("sources"):
            selection["sources"] = sorted(s.pk for s in data["sources"])
        if data.get("categories"):
            selection["categories"] = sorted(data["categories"])
        if data.get("tags"):
            selection["tags"] = sorted(t.name for t in data["tags"])
        if data.get("created_after"):
            selection["created_after"] = data["created_after"].isoformat()
        if data.get("created_before"):
            selection["created_before"] = data["created_before"].isoformat()
        if data.get("accepted_answer"):
            selection["accepted_answer"] = data["accepted_answer"] == "yes"
        return selection

    def save(self, commit: bool = True) -> Project:
        project = super().save(commit=False)
        project.coders_per_unit = self.cleaned_data["coders_per_unit"]
        project.overlap = self.cleaned_data["overlap_percent"] / 100
        project.selection = self.selection()
        if commit:
            project.save()
        return project


CONFIDENCE_CHOICES = [("0.9", "90%"), ("0.95", "95%"), ("0.99", "99%")]


class SampleForm(forms.Form):
    round_name = forms.CharField(
        max_length=100, required=False, label="Round", help_text="e.g. calibration, main"
    )
    confidence = forms.TypedChoiceField(
        choices=CONFIDENCE_CHOICES, coerce=float, initial="0.95", empty_value=None
    )
    margin = forms.FloatField(
        min_value=0.005, max_value=0.5, initial=0.05, help_text="e.g. 0.05 for ±5 points"
    )
    size = forms.IntegerField(
        min_value=1, required=False, help_text="Leave empty to use the calculated size."
    )
    stratify = forms.ChoiceField(
        choices=[("", "No (simple random)")] + [(s, f"By {s}") for s in STRATIFY_CHOICES],
        required=False,
    )
    seed = forms.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, help_text="Empty: a new random seed."
    )


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)

    def __init__(self, *args, project: Project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.project = project

    def clean_username(self):
        name = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=name, is_active=True).first()
        if user is None:
            raise forms.ValidationError(
                f"No account named {name!r}; site staff create accounts in the admin."
            )
        if self.project.memberships.filter(user=user).exists():
            raise forms.ValidationError(f"{name} is already a member of this project.")
        return user


class ReassignForm(forms.Form):
    from_coder = forms.TypedChoiceField(coerce=int, label="From")
    to_coder = forms.TypedChoiceField(coerce=int, label="To")

    def __init__(self, *args, current: list, annotators: list, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from_coder"].choices = [(u.pk, u.username) for u in current]
        self.fields["to_coder"].choices = [(u.pk, u.username) for u in annotators]

    def clean(self) -> dict:
        data = super().clean()
        if data.get("from_coder") and data.get("from_coder") == data.get("to_coder"):
            raise forms.ValidationError("Choose another annotator to take the unit over.")
        return data
